import assert from "node:assert/strict";
import {
  details,
  measureGroup,
  type Outcome,
  rateText,
  type SideRun,
  type SideSpec,
  summarize,
  table,
} from "./_compare.ts";

const run = (rate: number, p99Ms: number): SideRun => ({
  rate,
  p50Ms: 1,
  p99Ms,
  errors: 1,
  clientCpuMs: 500,
  wallMs: 1000,
  serverCpuMs: 1500,
  backendCpuMs: 100,
  machineCpuMs: 2400, // 1500 + 100 + 500 (the client) + 300 others
});

Deno.test("summarize() answers the mean rate and p50, the worse p99, summed errors and CPU shares", () => {
  assert.deepEqual(summarize([run(100, 2), run(200, 5)]), {
    rate: 150,
    p50Ms: 1,
    p99Ms: 5,
    errors: 2,
    clientCpuPct: 50,
    serverCores: 1.5,
    backendCores: 0.1,
    otherCores: 0.3,
    runs: 2,
  });
});

function side(key: string, log: string[], fail?: "start" | "run"): SideSpec {
  return {
    key,
    name: `side ${key}`,
    start: () => {
      if (fail === "start") return Promise.reject(new Error("no port\nmore"));
      log.push(`start ${key}`);
      return Promise.resolve({
        port: 1,
        pids: () => [],
        stop: () => (log.push(`stop ${key}`), Promise.resolve()),
      });
    },
  };
}

Deno.test("measureGroup() measures each side in turn then in reverse, and stops every side", async () => {
  const log: string[] = [];
  const sides = [side("a", log), side("b", log), { ...side("c", log), skip: "no flag" }];
  const outcomes = await measureGroup(sides, (s) => {
    log.push(`run ${s.key}`);
    if (s.key === "b" && log.filter((l) => l === "run b").length === 2) {
      return Promise.reject(new Error("wrk failed"));
    }
    return Promise.resolve(run(s.key === "a" ? 10 : 20, 1));
  });
  assert.deepEqual(log, [
    "start a",
    "start b",
    "run a",
    "run b",
    "run b",
    "run a",
    "stop a",
    "stop b",
  ]);
  assert.equal((outcomes.get("a") as { figure: { rate: number } }).figure.rate, 10);
  assert.deepEqual(outcomes.get("b"), { failure: "wrk failed" });
  assert.deepEqual(outcomes.get("c"), { failure: "skipped: no flag" });
});

Deno.test("measureGroup() reports a side that does not start with its first line and goes on", async () => {
  const log: string[] = [];
  const outcomes = await measureGroup(
    [side("a", log, "start"), side("b", log)],
    () => Promise.resolve(run(1, 1)),
  );
  assert.deepEqual(outcomes.get("a"), { failure: "set-up failed: no port" });
  assert.ok("figure" in outcomes.get("b")!);
});

Deno.test("table() prints the issue's berth | anchor | ratio rows with the goals, and failures", () => {
  const fig = (rate: number, p99Ms: number): Outcome => ({
    figure: { ...summarize([run(rate, p99Ms)]) },
  });
  const sides: SideSpec[] = ["b", "n", "h"].map((k) => side(k, []));
  sides[1] = { ...sides[1]!, backend: true };
  const outcomes = new Map<string, Outcome>([
    ["b", fig(45_100, 3)],
    ["n", fig(41_000, 2)],
    ["h", { failure: "set-up failed: haproxy missing" }],
  ]);
  const lines = table(
    "HTTP",
    [
      { label: "defaults", berth: "b", anchor: "n", goal: { rate: 1, p99: 1.5 } },
      { label: "defaults", berth: "b", anchor: "h" },
    ],
    sides,
    outcomes,
    "req/s",
  );
  assert.deepEqual(lines, [
    "| HTTP | berth | anchor | ratio |",
    "|---|---|---|---|",
    "| defaults | side b: 45.1k req/s, p50 1.00 ms, p99 3.00 ms | side n: 41.0k req/s, p50 1.00 ms, " +
    "p99 2.00 ms | 1.10× req/s, p99 1.50× (goal ≥ 1.0×, p99 ≤ 1.5×: met) |",
    "| defaults | side b: 45.1k req/s, p50 1.00 ms, p99 3.00 ms | side h: set-up failed: haproxy " +
    "missing | — |",
  ]);
  const d = details(sides, outcomes, { unit: "req/s", client: "wrk" });
  assert.match(
    d[0]!,
    /side b {2}\s+45100 req\/s {2}p50 1\.00 ms {2}p99 3\.00 ms {2}errors 1 {2}CPU: itself 1\.50 cores, wrk 50% of a core, the rest of the machine 0\.30 {2}\(1 runs\)/,
  );
  assert.match(d[1]!, /wrk 50% of a core, backend 0\.10, the rest of the machine 0\.30 /);
  assert.match(d[2]!, /side h {2}set-up failed: haproxy missing$/);
});

Deno.test("rateText() abbreviates thousands from 10,000", () => {
  assert.equal(rateText(45_123), "45.1k");
  assert.equal(rateText(9_999), "9999");
  assert.equal(rateText(NaN), "?");
});
