import assert from "node:assert/strict";
import { type Config, loadConfig } from "./config.ts";
import { drainParts, reloadConfig, reloadParts, reopenLogs } from "./agent_signals.ts";

const base = { env: {}, hostname: "host-a" };

Deno.test("drainParts() drains every part at once and logs what the timeout cut", async () => {
  const lines: string[] = [];
  const asked: number[] = [];
  const n = await drainParts(
    [
      (ms) => (asked.push(ms), Promise.resolve(2)),
      (ms) => (asked.push(ms), Promise.resolve(1)),
      () => Promise.reject(new Error("boom")),
    ],
    250,
    (l) => lines.push(l),
  );
  assert.equal(n, 3);
  assert.deepEqual(asked, [250, 250]);
  assert.match(lines[0]!, /^berth: draining: listeners closed, waiting up to 250 ms/);
  assert.equal(lines[1], "berth: error while draining: boom");
  assert.match(lines[2]!, /^berth: drained in \d+ ms; 3 request\(s\).* cut by the 250 ms timeout$/);
  assert.equal(lines.length, 3);
});

Deno.test("reloadParts() hands the changed settings to every part and names the refused ones", async () => {
  const current = loadConfig(["--dns-ttl", "0"], base);
  const fresh = loadConfig(["--dns-ttl", "30", "--dns", "127.0.0.1:9999"], base);
  const lines: string[] = [];
  const seen: number[] = [];
  const next = await reloadParts(
    current,
    fresh,
    [(c) => void seen.push(c.dnsTtl)],
    (l) => lines.push(l),
  );
  assert.deepEqual(seen, [30]);
  assert.equal(next.dnsTtl, 30);
  assert.deepEqual(next.dns, current.dns, "the address stays");
  assert.deepEqual(lines, [
    "berth: reload: not applied, a restart is needed to change: --dns",
    "berth: reload: applied --dns-ttl",
  ]);
});

Deno.test("reloadParts() with nothing reloadable changed calls no part and keeps the config", async () => {
  const current = loadConfig([], base);
  const lines: string[] = [];
  let called = false;
  const next = await reloadParts(
    current,
    loadConfig([], base),
    [() => void (called = true)],
    (l) => lines.push(l),
  );
  assert.equal(next, current);
  assert.equal(called, false);
  assert.deepEqual(lines, ["berth: reload: no setting that can change live changed"]);
});

/** An agent stand-in for reloadConfig(): its config and the configs it was asked to reload. */
function fakeAgent(config: Config) {
  const reloaded: Config[] = [];
  return { config, reloaded, reload: (c: Config) => (reloaded.push(c), Promise.resolve()) };
}

Deno.test("reloadConfig() without --config says there is nothing to reload", async () => {
  const agent = fakeAgent(loadConfig([], base));
  const lines: string[] = [];
  await reloadConfig(agent, [], (l) => lines.push(l));
  assert.deepEqual(lines, ["berth: SIGHUP: no --config file, nothing to reload"]);
  assert.deepEqual(agent.reloaded, []);
});

Deno.test("reloadConfig() reads the file again; one that does not load changes nothing", async () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/berth.json`;
  try {
    Deno.writeTextFileSync(path, JSON.stringify({ "dns-ttl": 0, node: "n1" }));
    const argv = ["--config", path];
    const agent = fakeAgent(loadConfig(argv, { env: {} }));
    const lines: string[] = [];
    Deno.writeTextFileSync(path, JSON.stringify({ "dns-ttl": 30, node: "n1" }));
    await reloadConfig(agent, argv, (l) => lines.push(l));
    assert.deepEqual(lines, [`berth: SIGHUP: reloading ${path}`]);
    assert.equal(agent.reloaded[0]?.dnsTtl, 30);
    Deno.writeTextFileSync(path, "{ not json");
    await reloadConfig(agent, argv, (l) => lines.push(l));
    assert.match(lines[1]!, new RegExp(`^berth: SIGHUP: ${path} not reloaded, nothing changed: `));
    assert.match(lines[1]!, /not JSON/);
    assert.equal(agent.reloaded.length, 1);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("reopenLogs() reopens every part's access log file and logs one line", async () => {
  const lines: string[] = [];
  let reopened = 0;
  const reopen = () => {
    reopened++;
    return Promise.resolve();
  };
  await reopenLogs([reopen, reopen], "/var/log/berth/access.log", (l) => lines.push(l));
  assert.equal(reopened, 2);
  assert.deepEqual(lines, ["berth: SIGUSR1: access log /var/log/berth/access.log reopened"]);
});

Deno.test("reopenLogs() says when there is no file to reopen, and when reopening failed", async () => {
  const lines: string[] = [];
  await reopenLogs([], null, (l) => lines.push(l));
  await reopenLogs([() => Promise.resolve()], "stdout", (l) => lines.push(l));
  await reopenLogs(
    [() => Promise.reject(new Error("access log /x/a.log: No such file or directory"))],
    "/x/a.log",
    (l) => lines.push(l),
  );
  assert.deepEqual(lines, [
    "berth: SIGUSR1: no access log file to reopen",
    "berth: SIGUSR1: no access log file to reopen",
    "berth: SIGUSR1: access log /x/a.log: No such file or directory; writing on to the old file",
  ]);
});
