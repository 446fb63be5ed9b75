import assert from "node:assert/strict";
import { ApiServer } from "../api/mod.ts";
import { LocalCluster } from "../cluster/testing.ts";
import { Store } from "../store/mod.ts";
import { VERSION } from "../version.ts";
import { type CliIo, main } from "./mod.ts";
import { LOCK_KILL_GRACE_MS } from "./lock_command.ts";
import { acquire, LockError } from "./lock.ts";
import { ApiClient } from "../api/mod.ts";

/** Test-side wait for a condition (a failure, not a timing assertion). */
const WAIT_MS = 10_000;

async function until(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Agent {
  env: Record<string, string>;
  store: Store;
  url: string;
  dir: string;
}

async function withAgent(fn: (a: Agent) => Promise<void>): Promise<void> {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" });
  await cluster.propose({ type: "node.register", name: "n1", address: "127.0.0.1", meta: {} });
  const api = new ApiServer({
    store,
    cluster,
    node: "n1",
    advertise: "127.0.0.1",
    version: VERSION,
    aclDefault: "allow",
    listen: { host: "127.0.0.1", port: 0 },
  });
  await api.start();
  const dir = await Deno.makeTempDir({ prefix: "berth-lock-test-" });
  const url = `http://127.0.0.1:${api.address.port}`;
  try {
    await fn({ env: { BERTH_HTTP_ADDR: url }, store, url, dir });
  } finally {
    await api.close();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

interface Run {
  code: Promise<number>;
  err: () => string;
  out: () => string;
}

function start(argv: string[], env: Record<string, string>): Run {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: (c) => out.push(typeof c === "string" ? c : new TextDecoder().decode(c)),
    stderr: (t) => err.push(t),
    env,
  };
  return { code: main(argv, io), err: () => err.join(""), out: () => out.join("") };
}

/** A command that touches DIR/NAME.started, then waits for DIR/NAME.go and exits with `code`. */
function waiter(dir: string, name: string, code = 0): string[] {
  const f = `${dir}/${name}`;
  return [
    "sh",
    "-c",
    `touch ${f}.started; while [ ! -e ${f}.go ]; do sleep 0.02; done; exit ${code}`,
  ];
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

async function getJson(url: string): Promise<unknown> {
  const r = await fetch(url);
  return r.status === 404 ? (await r.body?.cancel(), null) : await r.json();
}

type Pair = { Key: string; Session?: string; Value: string | null };

Deno.test("main() lock runs the command while holding PREFIX/.lock, then releases and destroys", async () => {
  await withAgent(async ({ env, url, dir }) => {
    const run = start(["lock", "jobs/backup", "--", ...waiter(dir, "a", 3)], env);
    await until("the command to start", () => exists(`${dir}/a.started`));
    const pairs = await getJson(`${url}/v1/kv/jobs/backup/.lock`) as Pair[];
    const sessions = await getJson(`${url}/v1/session/list`) as { ID: string; Name: string }[];
    assert.equal(sessions.length, 1);
    assert.equal(pairs[0]?.Session, sessions[0]!.ID, "the command runs without the lock");
    assert.match(sessions[0]!.Name, /^berth lock jobs\/backup \(sh -c /);
    await Deno.writeTextFile(`${dir}/a.go`, "");
    assert.equal(await run.code, 3, run.err());
    assert.equal(await getJson(`${url}/v1/kv/jobs/backup/.lock`), null, "lock key left behind");
    assert.deepEqual(await getJson(`${url}/v1/session/list`), []);
  });
});

Deno.test("main() lock: a second holder waits until the first releases", async () => {
  await withAgent(async ({ env, url, dir }) => {
    const first = start(["lock", "jobs/x", "--", ...waiter(dir, "a")], env);
    await until("the first command", () => exists(`${dir}/a.started`));
    const second = start(["lock", "jobs/x", "--", ...waiter(dir, "b")], env);
    await until("the second session", async () => {
      return ((await getJson(`${url}/v1/session/list`)) as unknown[]).length === 2;
    });
    // The second waits on a blocking read; give it a few reads' worth of chances to go wrong.
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!await exists(`${dir}/b.started`), "two holders at once");
    await Deno.writeTextFile(`${dir}/a.go`, "");
    assert.equal(await first.code, 0, first.err());
    await until("the second command", () => exists(`${dir}/b.started`));
    await Deno.writeTextFile(`${dir}/b.go`, "");
    assert.equal(await second.code, 0, second.err());
    assert.deepEqual(await getJson(`${url}/v1/session/list`), []);
  });
});

Deno.test("main() lock stops the command with SIGTERM when the lock is lost", async () => {
  await withAgent(async ({ env, url, dir }) => {
    const cmd = ["sh", "-c", `touch ${dir}/a.started; exec sleep 30`];
    const run = start(["lock", "jobs/y", "--", ...cmd], env);
    await until("the command", () => exists(`${dir}/a.started`));
    const [s] = await getJson(`${url}/v1/session/list`) as { ID: string }[];
    const r = await fetch(`${url}/v1/session/destroy/${s!.ID}`, { method: "PUT" });
    await r.body?.cancel();
    assert.equal(await run.code, 1);
    assert.match(run.err(), /^berth lock: lock lost \(.*\); stopping sh\n$/);
  });
});

Deno.test("main() lock sends SIGKILL when the command ignores SIGTERM", async () => {
  await withAgent(async ({ env, url, dir }) => {
    const cmd = ["sh", "-c", `trap '' TERM; touch ${dir}/a.started; while :; do sleep 0.05; done`];
    const run = start(["lock", "jobs/z", "--", ...cmd], env);
    await until("the command", () => exists(`${dir}/a.started`));
    const [s] = await getJson(`${url}/v1/session/list`) as { ID: string }[];
    const started = Date.now();
    const r = await fetch(`${url}/v1/session/destroy/${s!.ID}`, { method: "PUT" });
    await r.body?.cancel();
    assert.equal(await run.code, 1);
    // Killed at all proves SIGKILL (SIGTERM is ignored); not before the grace period.
    assert.ok(Date.now() - started >= LOCK_KILL_GRACE_MS - 100);
  });
});

Deno.test("main() lock -n 2 lets two holders in at once, the third when one leaves", async () => {
  await withAgent(async ({ env, url, dir }) => {
    const runs = ["a", "b", "c"].map((n) =>
      start(["lock", "-n", "2", "pool", "--", ...waiter(dir, n)], env)
    );
    const started = async () =>
      (await Promise.all(["a", "b", "c"].map((n) => exists(`${dir}/${n}.started`))))
        .filter(Boolean).length;
    await until("two holders", async () => await started() === 2);
    await until("three contender keys", async () => {
      const keys = await getJson(`${url}/v1/kv/pool/?keys`) as string[];
      return keys.length === 4;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await started(), 2, "a third holder got in");
    const [lock] = await getJson(`${url}/v1/kv/pool/.lock`) as Pair[];
    const state = JSON.parse(atob(lock!.Value!));
    assert.equal(state.Limit, 2);
    assert.equal(Object.keys(state.Holders).length, 2);
    const first = (await Promise.all(["a", "b", "c"].map(async (n) => {
      return await exists(`${dir}/${n}.started`) ? n : null;
    }))).find((n) => n !== null)!;
    await Deno.writeTextFile(`${dir}/${first}.go`, "");
    await until("the third holder", async () => await started() === 3);
    for (const n of ["a", "b", "c"]) await Deno.writeTextFile(`${dir}/${n}.go`, "");
    for (const r of runs) assert.equal(await r.code, 0, r.err());
    const after = await getJson(`${url}/v1/kv/pool/?recurse`) as Pair[];
    assert.deepEqual(after.map((p) => p.Key), ["pool/.lock"], "contender keys left behind");
    assert.deepEqual(JSON.parse(atob(after[0]!.Value!)).Holders, {});
    assert.deepEqual(await getJson(`${url}/v1/session/list`), []);
  });
});

Deno.test("main() lock -n: a holder whose session ends is stopped by the watch on the prefix", async () => {
  await withAgent(async ({ env, url, dir }) => {
    const cmd = ["sh", "-c", `touch ${dir}/a.started; exec sleep 30`];
    const run = start(["lock", "-n", "2", "pool", "--", ...cmd], env);
    await until("the command", () => exists(`${dir}/a.started`));
    const [s] = await getJson(`${url}/v1/session/list`) as { ID: string }[];
    const r = await fetch(`${url}/v1/session/destroy/${s!.ID}`, { method: "PUT" });
    await r.body?.cancel();
    assert.equal(await run.code, 1);
    // Found by the blocking read of the prefix (its contender key went), not by a renewal.
    assert.match(run.err(), /^berth lock: lock lost \(pool\/\.lock is no longer held by session/);
  });
});

Deno.test("acquire() stops waiting when its signal aborts and destroys its session", async () => {
  await withAgent(async ({ env, url, dir }) => {
    const holder = start(["lock", "jobs/w", "--", ...waiter(dir, "a")], env);
    await until("the holder", () => exists(`${dir}/a.started`));
    const stop = new AbortController();
    const waiting = acquire(new ApiClient(url), "jobs/w", {
      limit: 1,
      name: "w",
      signal: stop.signal,
    });
    await until("the waiter's session", async () => {
      return ((await getJson(`${url}/v1/session/list`)) as unknown[]).length === 2;
    });
    stop.abort();
    await assert.rejects(
      waiting,
      (e) => e instanceof LockError && /stopped while waiting/.test(e.message),
    );
    assert.equal(((await getJson(`${url}/v1/session/list`)) as unknown[]).length, 1);
    await Deno.writeTextFile(`${dir}/a.go`, "");
    assert.equal(await holder.code, 0, holder.err());
  });
});

Deno.test("main() lock refuses a semaphore of another limit and a lock on a semaphore", async () => {
  await withAgent(async ({ env, dir }) => {
    const holder = start(["lock", "-n", "2", "pool", "--", ...waiter(dir, "a")], env);
    await until("the holder", () => exists(`${dir}/a.started`));
    const other = start(["lock", "-n", "3", "pool", "--", "true"], env);
    assert.equal(await other.code, 1);
    assert.equal(other.err(), "berth lock: pool/.lock has limit 2, not 3 (-n)\n");
    const lock = start(["lock", "pool", "--", "true"], env);
    assert.equal(await lock.code, 1);
    assert.equal(
      lock.err(),
      "berth lock: pool/.lock holds a semaphore (berth lock -n), not a lock\n",
    );
    await Deno.writeTextFile(`${dir}/a.go`, "");
    assert.equal(await holder.code, 0, holder.err());
  });
});

Deno.test("main() session list shows the lock's session; --json gives Consul's entries", async () => {
  await withAgent(async ({ env, dir }) => {
    const run = start(["lock", "--name", "nightly", "jobs/n", "--", ...waiter(dir, "a")], env);
    await until("the command", () => exists(`${dir}/a.started`));
    const table = start(["session", "list"], env);
    assert.equal(await table.code, 0, table.err());
    const lines = table.out().trim().split("\n");
    assert.match(lines[0]!, /^ID\s+Name\s+Node\s+Behavior\s+TTL\s+LockDelay\s+Checks$/);
    assert.match(lines[1]!, /^[0-9a-f-]{36}\s+nightly\s+n1\s+release\s+15s\s+15s\s+serfHealth$/);
    const json = start(["session", "list", "--json"], env);
    assert.equal(await json.code, 0);
    const [s] = JSON.parse(json.out());
    assert.equal(s.Name, "nightly");
    assert.equal(s.Behavior, "release");
    await Deno.writeTextFile(`${dir}/a.go`, "");
    assert.equal(await run.code, 0);
  });
});

Deno.test("main() lock rejects bad usage with one line and exit 2; a missing program is 127", async (t) => {
  await withAgent(async ({ env, url }) => {
    const cases: [string[], RegExp][] = [
      [["lock"], /^berth lock: expected at least 2 arguments, got 0: berth lock PREFIX/],
      [["lock", "p"], /^berth lock: expected at least 2 arguments, got 1/],
      [
        ["lock", "-n", "0", "p", "--", "true"],
        /^berth lock: -n 0: expected an integer in 1\.\.1024\n$/,
      ],
      [["lock", "-n", "x", "p", "--", "true"], /^berth lock: --limit x: not an integer/],
      [["lock", "/", "--", "true"], /^berth lock: PREFIX is empty; expected a KV prefix/],
    ];
    for (const [argv, message] of cases) {
      await t.step(argv.join(" "), async () => {
        const r = start(argv, env);
        assert.equal(await r.code, 2);
        assert.match(r.err(), message);
        assert.equal(r.err().trim().split("\n").length, 1);
      });
    }
    const missing = start(["lock", "p", "--", "/nonexistent/program"], env);
    assert.equal(await missing.code, 127);
    assert.match(missing.err(), /^berth lock: cannot run \/nonexistent\/program: /);
    assert.deepEqual(await getJson(`${url}/v1/session/list`), []);
  });
});

Deno.test("berth lock passes SIGTERM on to the command, then releases and destroys its session", async () => {
  await withAgent(async ({ url, dir }) => {
    const script = `trap 'echo term >> ${dir}/log; exit 0' TERM; touch ${dir}/a.started; ` +
      `while :; do sleep 0.05; done`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname, "lock", "jobs/t", "--"]
        .concat(["sh", "-c", script]),
      env: { BERTH_HTTP_ADDR: url, NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    try {
      await until("the command", () => exists(`${dir}/a.started`));
      child.kill("SIGTERM");
      const status = await child.status;
      assert.equal(status.code, 0, await stderr); // the command's own exit code after its trap
      assert.equal(await Deno.readTextFile(`${dir}/log`), "term\n");
      assert.deepEqual(await getJson(`${url}/v1/session/list`), []);
      assert.equal(await getJson(`${url}/v1/kv/jobs/t/.lock`), null);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
    }
  });
});
