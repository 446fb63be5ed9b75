/**
 * What one store apply costs as the catalog grows: loads N instances onto one node (an agent
 * that registered everything through its API), then times 1,000 more registrations, 1,000 check
 * results and 1,000 deregistrations applied one entry each, with and without a registered TTL
 * check per instance, and prints µs per entry. The figures should not grow with N.
 *
 * Usage: deno run -A scripts/store_apply_bench.ts [N=100000] [--file]
 *   --file: a store file (synchronous=OFF) in a temp dir instead of `:memory:`.
 *
 * @module
 */
import { type Command, type InstanceSpec, Store } from "../src/store/mod.ts";

const n = Number(Deno.args.find((a) => /^\d+$/.test(a)) ?? 100_000);
const onFile = Deno.args.includes("--file");

function spec(k: number, withCheck: boolean): InstanceSpec {
  const id = `svc-${k % 1000}-${k}`;
  return {
    id,
    service: `svc-${k % 1000}`,
    node: "n1",
    address: "10.0.0.1",
    port: 20_000 + (k % 40_000),
    tags: ["v1"],
    meta: { version: "1" },
    weight: 1,
    containerId: null,
    httpHosts: [],
    httpPath: null,
    tcpPort: null,
    check: null,
    docker: null,
    checkResult: null,
    ...(withCheck
      ? {
        checks: [{
          id: `service:${id}:ttl`,
          name: "ttl",
          notes: "",
          kind: "ttl" as const,
          target: "",
          ttlMs: 30_000,
          intervalMs: 0,
          timeoutMs: 0,
          deregisterCriticalAfterMs: 0,
          status: "critical" as const,
          output: "",
        }],
      }
      : {}),
  };
}

async function run(withCheck: boolean): Promise<void> {
  const dir = onFile ? await Deno.makeTempDir({ prefix: "berth-apply-bench-" }) : "";
  const s = Store.open(onFile ? `${dir}/store.db` : ":memory:", { synchronous: "OFF" });
  let changes = 0;
  s.subscribe(() => changes++);
  let index = 0;
  s.apply(++index, { type: "node.register", name: "n1", address: "10.0.0.1", meta: {} });
  const time = (label: string, cmds: Command[]) => {
    const t0 = performance.now();
    for (const c of cmds) {
      const r = s.apply(++index, c);
      if (!r.ok) throw new Error(`${label}: ${r.error}`);
    }
    const us = (performance.now() - t0) * 1000 / cmds.length;
    console.log(`  ${label.padEnd(44)} ${us.toFixed(1).padStart(8)} µs/entry`);
  };
  const load = (from: number, to: number) => {
    const t0 = performance.now();
    for (let k = from; k < to; k += 1000) {
      const entries = [];
      for (let j = k; j < Math.min(to, k + 1000); j++) {
        entries.push({
          index: ++index,
          command: { type: "register", instance: spec(j, withCheck) },
        });
      }
      s.applyMany(entries);
    }
    return performance.now() - t0;
  };
  console.log(`${withCheck ? "with" : "without"} a TTL check per instance:`);
  let loaded = 0;
  for (const size of [1000, n]) {
    const ms = load(loaded, size);
    loaded = size;
    console.log(` catalog of ${size} instances on node n1 (loaded in ${ms.toFixed(0)} ms):`);
    const fresh = Array.from({ length: 1000 }, (_, k) => spec(10_000_000 + k, withCheck));
    time("register (new instance)", fresh.map((instance) => ({ type: "register", instance })));
    time(
      "register (changed: new tag)",
      fresh.map((i) => ({ type: "register", instance: { ...i, tags: ["v2"] } })),
    );
    if (withCheck) {
      time(
        "check.update (TTL pass)",
        fresh.map((i) => ({
          type: "check.update",
          node: "n1",
          id: i.checks![0]!.id,
          status: "passing",
          output: "ok",
        })),
      );
    } else {
      time(
        "check (result)",
        fresh.map((i) => ({ type: "check", id: i.id, status: "passing", output: "ok" })),
      );
    }
    time("deregister", fresh.map((i) => ({ type: "deregister", id: i.id })));
    let read = 0;
    let worst = 0;
    const t0 = performance.now();
    for (let after = "";;) {
      const t = performance.now();
      const page = s.instancesPage(after, 2000);
      worst = Math.max(worst, performance.now() - t);
      if (page.length === 0) break;
      read += page.length;
      after = page[page.length - 1]!.id;
    }
    const readMs = (performance.now() - t0).toFixed(0);
    console.log(
      `  read all ${read} in pages of 2000: ${readMs} ms, ${worst.toFixed(1)} ms the slowest page`,
    );
  }
  console.log(`  (${changes} changes announced)`);
  s.close();
  if (onFile) await Deno.remove(dir, { recursive: true });
}

await run(false);
await run(true);
