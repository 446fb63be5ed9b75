import assert from "node:assert/strict";
import { TestStore } from "../_testing.ts";
import { waitFor } from "../../../test/wait.ts";
import type { ProxyWorkers } from "./proxy_workers.ts";
import { twoWorkers } from "./_testing.ts";

/** Two proxy workers writing the access log `path`; closes them, the store and `dir` after. */
async function withLogWorkers(
  dir: string,
  path: string,
  fn: (w: ProxyWorkers, logs: string[]) => Promise<void>,
): Promise<void> {
  const ts = new TestStore();
  const logs: string[] = [];
  const w = twoWorkers(ts.store, {
    log: (l) => logs.push(l),
    config: { accessLog: { target: path, format: "json" } },
  });
  try {
    await w.start();
    await fn(w, logs);
  } finally {
    await w.close();
    ts.store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ProxyWorkers.reopenAccessLog() resolves only once every worker reopened, else names each failure", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/sub`);
  await withLogWorkers(dir, `${dir}/sub/access.log`, async (w) => {
    await w.reopenAccessLog();
    await Deno.rename(`${dir}/sub`, `${dir}/gone`);
    await assert.rejects(
      w.reopenAccessLog(),
      new RegExp(
        `^Error: access log ${dir}/sub/access.log: reopened by 0 of 2 proxy threads; ` +
          `workers 0, 1: No such file or directory`,
      ),
    );
    await Deno.mkdir(`${dir}/sub`);
    await w.reopenAccessLog();
  });
});

Deno.test("ProxyWorkers: a worker that restarts while its access log cannot be opened still serves, its lines dropped", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/sub`);
  await withLogWorkers(dir, `${dir}/sub/access.log`, async (w, logs) => {
    await Deno.rename(`${dir}/sub`, `${dir}/gone`);
    w.kill(1);
    await waitFor("worker 1 back", () => w.running === 2);
    assert.equal(logs.filter((l) => l.startsWith("proxy worker 1: access log ")).length, 1);
    assert.match(logs.join("\n"), /its lines are dropped until SIGUSR1/);
    await Deno.mkdir(`${dir}/sub`);
    await w.reopenAccessLog(); // opens it in the restarted worker too
  });
});
