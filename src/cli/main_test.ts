import assert from "node:assert/strict";
import { ApiServer } from "../api/mod.ts";
import type { MemberStatus } from "../cluster/mod.ts";
import { LocalCluster } from "../cluster/testing.ts";
import { Store } from "../store/mod.ts";
import { addToken } from "../api/_testing.ts";
import { VERSION } from "../version.ts";
import { apiInstanceSpec } from "../../test/fixtures.ts";
import { type CliIo, EXIT_STDOUT_CLOSED, main } from "./mod.ts";

interface Run {
  code: number;
  out: string;
  err: string;
}

function io(env: Record<string, string> = {}, runAgent?: CliIo["runAgent"]) {
  const out: Uint8Array[] = [];
  const err: string[] = [];
  const enc = new TextEncoder();
  const cio: CliIo = {
    stdout: (c) => out.push(typeof c === "string" ? enc.encode(c) : c),
    stderr: (t) => err.push(t),
    env,
    runAgent,
  };
  const text = () => new TextDecoder().decode(new Uint8Array(out.flatMap((c) => [...c])));
  return { cio, text, err: () => err.join("") };
}

async function run(argv: string[], env: Record<string, string> = {}): Promise<Run> {
  const x = io(env);
  const code = await main(argv, x.cio);
  return { code, out: x.text(), err: x.err() };
}

async function withAgent(
  fn: (env: Record<string, string>, store: Store) => Promise<void>,
  opts: { managementSecret?: string; cluster?: (c: LocalCluster) => void } = {},
): Promise<void> {
  const store = Store.open(":memory:");
  if (opts.managementSecret !== undefined) addToken(store, opts.managementSecret, "management");
  const cluster = new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" });
  opts.cluster?.(cluster);
  const api = new ApiServer({
    store,
    cluster,
    node: "n1",
    advertise: "127.0.0.1",
    version: VERSION,
    aclDefault: opts.managementSecret === undefined ? "allow" : "deny",
    listen: { host: "127.0.0.1", port: 0 },
  });
  await api.start();
  try {
    await fn({ BERTH_HTTP_ADDR: `http://127.0.0.1:${api.address.port}` }, store);
  } finally {
    await api.close();
    store.close();
  }
}

Deno.test("main() kv put/get/list/delete round trip against a running agent", async () => {
  await withAgent(async (env, store) => {
    let r = await run(["kv", "put", "app/db", "postgres://x"], env);
    assert.deepEqual([r.code, r.out, r.err], [0, "Success! Data written to: app/db\n", ""]);
    r = await run(["kv", "get", "app/db"], env);
    assert.deepEqual([r.code, r.out], [0, "postgres://x\n"]);
    await run(["kv", "put", "app/x/y", "1"], env);
    r = await run(["kv", "list", "app/", "--separator", "/"], env);
    assert.equal(r.out, "app/db\napp/x/\n");
    r = await run(["kv", "get", "app/", "--recurse"], env);
    assert.equal(r.out, "app/db:postgres://x\napp/x/y:1\n");
    r = await run(["kv", "get", "app/db", "--json"], env);
    const [e] = JSON.parse(r.out);
    assert.equal(e.value, "postgres://x");
    r = await run(["kv", "put", "app/db", "new", `--cas=${e.modifyIndex + 50}`], env);
    assert.equal(r.code, 1);
    assert.match(r.err, /not written: "app\/db" is not at index \d+ \(--cas\)/);
    r = await run(["kv", "put", "--cas", String(e.modifyIndex), "app/db", "--", "-5"], env);
    assert.equal(r.code, 0, r.err);
    assert.equal(new TextDecoder().decode(store.kvGet("app/db")!.value), "-5");
    r = await run(["kv", "delete", "app/", "--recurse"], env);
    assert.deepEqual([r.code, r.out], [0, "Success! Deleted keys with prefix: app/\n"]);
    r = await run(["kv", "get", "app/db"], env);
    assert.deepEqual([r.code, r.err], [1, 'berth kv get: no key "app/db"\n']);
  });
});

Deno.test("main() services and service NAME print aligned tables", async () => {
  await withAgent(async (env, store) => {
    store.apply(1, {
      type: "register",
      instance: apiInstanceSpec({ meta: {} }),
    });
    let r = await run(["services"], env);
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      "Service  Instances  Passing  Tags\n" +
        "web      1          1        v1\n",
    );
    r = await run(["service", "web"], env);
    assert.equal(
      r.out,
      "ID           Address         Node  Status   Tags  Output\n" +
        "n1:web-1:80  10.0.0.1:32768  n1    passing  v1\n",
    );
    r = await run(["service", "web", "--json"], env);
    assert.equal(JSON.parse(r.out)[0].port, 32768);
    r = await run(["service", "nope"], env);
    assert.deepEqual([r.code, r.err], [1, 'berth service: no instances of service "nope"\n']);
  });
});

Deno.test("main() services and service NAME show a down node's instances as not passing", async () => {
  await withAgent(async (env, store) => {
    store.apply(1, { type: "node.register", name: "n2", address: "10.0.0.2", meta: {} });
    store.apply(2, { type: "register", instance: apiInstanceSpec({ meta: {} }) });
    store.apply(3, {
      type: "register",
      instance: apiInstanceSpec({ id: "n2:web-1:80", node: "n2", address: "10.0.0.2", meta: {} }),
    });
    store.apply(4, { type: "node.status", name: "n2", status: "down" });
    let r = await run(["services"], env);
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      "Service  Instances  Passing  Tags\n" +
        "web      2          1        v1\n",
    );
    r = await run(["service", "web"], env);
    assert.equal(
      r.out,
      "ID           Address         Node  Status    Tags  Output\n" +
        "n1:web-1:80  10.0.0.1:32768  n1    passing   v1\n" +
        "n2:web-1:80  10.0.0.2:32768  n2    critical  v1    node n2 is down\n",
    );
    r = await run(["service", "web", "--json"], env);
    assert.deepEqual(
      JSON.parse(r.out).map((i: { status: string; output: string }) => [i.status, i.output]),
      [["passing", ""], ["critical", "node n2 is down"]],
    );
  });
});

Deno.test("main() status and members show the cluster", async () => {
  await withAgent(async (env) => {
    let r = await run(["status"], env);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Node: +n1$/m);
    assert.match(r.out, /^Leader: +n1$/m);
    assert.match(r.out, /^Applied index: +0$/m);
    r = await run(["members"], env);
    assert.equal(
      r.out,
      "Node  Address         Role   State   Last contact  Status\n" +
        "n1    127.0.0.1:8300  voter  leader  0ms           alive\n",
    );
    r = await run(["status", "--json", "--http-addr", env.BERTH_HTTP_ADDR!.slice(7)], {});
    assert.equal(JSON.parse(r.out).role, "standalone");
  });
});

Deno.test("main() members lists members by name, and says how to join when there are none", async () => {
  let list: MemberStatus[] = [];
  await withAgent(async (env) => {
    for (const argv of [["members"], ["raft", "peers"]]) {
      list = [];
      let r = await run(argv, env);
      assert.equal(r.code, 0, r.err);
      assert.equal(
        r.out,
        "this member is in no cluster yet: start with --bootstrap or --join, or run " +
          "`berth join ADDR`\n",
      );
      const row = (name: string, id: number): MemberStatus => ({
        id,
        name,
        address: `127.0.0.${id}:8300`,
        role: "voter",
        state: "follower",
        lastContactMs: 0,
        status: "alive",
        contactFrom: "leader",
      });
      list = [row("n3", 3), row("n1", 1), row("n2", 2)];
      r = await run(argv, env);
      assert.deepEqual(r.out.split("\n").slice(1, 4).map((l) => l.split(" ")[0]), [
        "n1",
        "n2",
        "n3",
      ]);
    }
  }, {
    cluster: (c) => {
      c.members = () => list;
      c.membersFromLeader = () => Promise.resolve(list);
    },
  });
});

Deno.test("main() status of a member that never heard a leader shows last contact never", async () => {
  await withAgent(async (env) => {
    const r = await run(["status"], env);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Last contact: +never$/m);
    assert.match(r.out, /^Leader: +\(none\)$/m);
  }, {
    cluster: (c) => {
      const status = c.status.bind(c);
      c.status = () => ({ ...status(), leader: null, leaderAddress: null, lastContactMs: null });
    },
  });
});

Deno.test("main() members marks the contact column local when no leader gave its view", async () => {
  await withAgent(async (env) => {
    const r = await run(["members"], env);
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      "Node  Address         Role   State     Last contact (local)  Status\n" +
        "n1    127.0.0.1:8300  voter  follower  never                 alive\n",
    );
  }, {
    cluster: (c) => {
      const own = c.members.bind(c);
      c.membersFromLeader = () =>
        Promise.resolve(
          own().map((m) => ({
            ...m,
            state: "follower" as const,
            lastContactMs: null,
            contactFrom: "local" as const,
          })),
        );
    },
  });
});

Deno.test("main() sends the token of --token, --token-file, BERTH_TOKEN or BERTH_TOKEN_FILE; a missing or wrong one is refused with one line", async () => {
  await withAgent(async (env) => {
    let r = await run(["kv", "put", "k", "v"], env);
    assert.equal(r.code, 1);
    assert.match(r.err, /^berth kv put: the agent answered 403: Permission denied/);
    assert.equal(r.err.trimEnd().split("\n").length, 1);
    r = await run(["kv", "put", "k", "v", "--token", "wrong"], env);
    assert.equal(r.code, 1);
    assert.match(r.err, /^berth kv put: the agent answered 403: ACL not found/);
    r = await run(["kv", "put", "k", "v", "--token", "t0k"], env);
    assert.equal(r.code, 0, r.err);
    r = await run(["kv", "delete", "k"], { ...env, BERTH_TOKEN: "t0k" });
    assert.equal(r.code, 0, r.err);
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/token`, "t0k\n");
      r = await run(["kv", "put", "k", "v", "--token-file", `${dir}/token`], env);
      assert.equal(r.code, 0, r.err);
      r = await run(["kv", "get", "k"], { ...env, BERTH_TOKEN_FILE: `${dir}/token` });
      assert.equal(r.out, "v\n", r.err);
      // --token wins over the file, as Consul's -token over -token-file.
      r = await run(["kv", "get", "k", "--token", "wrong", "--token-file", `${dir}/token`], env);
      assert.match(r.err, /403: ACL not found/);
      r = await run(["kv", "get", "k", "--token-file", `${dir}/missing`], env);
      assert.equal(r.code, 2);
      assert.match(r.err, /^berth kv get: cannot read the token file .*missing: /);
      assert.equal(r.err.trimEnd().split("\n").length, 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }, { managementSecret: "t0k" });
});

Deno.test("main() admin commands say clearly when the agent lacks the route", async () => {
  await withAgent(async (env) => {
    const r = await run(["raft", "transfer-leader"], env);
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /^berth raft transfer-leader: not supported by the agent at http:\/\/127\.0\.0\.1:\d+ \(501: raft transfer-leader is not supported by this cluster\)\n$/,
    );
    const j = await run(["join", "10.0.0.2:8300"], env);
    assert.match(j.err, /^berth join: not supported by the agent/);
    const peers = await run(["raft", "peers"], env);
    assert.equal(peers.code, 0, peers.err);
    assert.match(peers.out, /^n1 +127\.0\.0\.1:8300 +voter/m);
  });
});

Deno.test("main() an optional command's 404 from its own route is the route's answer, not 'not supported'", async () => {
  await withAgent(async (env) => {
    const r = await run(["token", "revoke", "zzzzzz"], { ...env, BERTH_TOKEN: "m" });
    assert.equal(r.code, 1);
    assert.equal(r.err, "berth token revoke: the agent answered 404: no join token zzzzzz\n");
  }, { managementSecret: "m" });
  // An agent without the route (an older one) still reads "not supported".
  const old = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) =>
      new Response(`no route for ${req.method} ${new URL(req.url).pathname}\n`, { status: 404 }),
  );
  try {
    const r = await run(["token", "revoke", "zzzzzz"], {
      BERTH_HTTP_ADDR: `http://127.0.0.1:${old.addr.port}`,
    });
    assert.equal(r.code, 1);
    assert.match(
      r.err,
      /^berth token revoke: not supported by the agent at http:\/\/127\.0\.0\.1:\d+ \(404: no route for DELETE \/v1\/berth\/tokens\/zzzzzz\)\n$/,
    );
  } finally {
    await old.shutdown();
  }
});

Deno.test("main() snapshot save then restore round-trips the agent's state through a file", async () => {
  // Snapshots need the management token (acl:write).
  await withAgent(async (agentEnv, store) => {
    const env = { ...agentEnv, BERTH_TOKEN: "m" };
    const dir = await Deno.makeTempDir();
    const file = `${dir}/backup.snap`;
    try {
      assert.equal((await run(["kv", "put", "app/db", "one"], env)).code, 0);
      const r = await run(["snapshot", "save", file], env);
      assert.equal(r.code, 0, r.err);
      const size = (await Deno.stat(file)).size;
      assert.equal(r.out, `Saved snapshot of ${size} bytes to ${file}\n`);
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["backup.snap"]);
      assert.equal((await run(["kv", "put", "app/db", "two"], env)).code, 0);
      assert.equal((await run(["kv", "put", "app/new", "x"], env)).code, 0);
      const back = await run(["snapshot", "restore", file], env);
      assert.equal(back.code, 0, back.err);
      assert.equal(back.out, `Restored snapshot from ${file}\n`);
      assert.deepEqual(store.kvKeys(""), ["app/db"]);
      assert.equal(new TextDecoder().decode(store.kvGet("app/db")!.value), "one");
      const missing = await run(["snapshot", "restore", `${file}.missing`], env);
      assert.equal(missing.code, 1);
      assert.match(missing.err, /cannot read .*\.missing/);
      await Deno.writeTextFile(`${dir}/junk`, "not a snapshot at all");
      const junk = await run(["snapshot", "restore", `${dir}/junk`], env);
      assert.equal(junk.code, 1);
      assert.match(junk.err, /not a berth store snapshot/);
      assert.deepEqual(store.kvKeys(""), ["app/db"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }, { managementSecret: "m" });
});

Deno.test("main() version prints berth, Deno and SQLite versions without an agent", async () => {
  const r = await run(["version"]);
  assert.equal(r.code, 0);
  assert.match(
    r.out,
    new RegExp(
      `^berth ${
        VERSION.replaceAll(".", "\\.")
      }\ndeno \\d+\\.\\d+\\.\\d+\nsqlite 3\\.\\d+\\.\\d+\n$`,
    ),
  );
});

Deno.test("main() usage mistakes print one line and exit 2", async (t) => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /^berth: unknown command "frobnicate" \(see berth --help\)$/],
    [["services", "--nope"], /^berth services: unknown flag --nope \(see berth services --help\)$/],
    [["kv", "get"], /^berth kv get: expected 1 argument, got 0: berth kv get KEY/],
    [["kv", "put", "k"], /^berth kv put: expected 2 arguments, got 1/],
    [["kv", "zap"], /^berth kv: unknown subcommand "zap" \(see berth kv --help\)$/],
    [
      ["kv", "put", "k", "v", "--cas", "x"],
      /^berth kv put: --cas x: not an integer; expected a non-negative integer \(see berth kv put --help\)$/,
    ],
    [["kv", "get", "k", "--cas", "1"], /^berth kv get: unknown flag --cas/],
    [["status", "--http-addr", "ftp://x"], /expected an http:\/\/ or https:\/\/ address/],
    [["version", "--token", "x"], /^berth version: unknown flag --token/],
  ];
  for (const [argv, want] of cases) {
    await t.step(argv.join(" "), async () => {
      const r = await run(argv);
      assert.equal(r.code, 2);
      assert.equal(r.out, "");
      assert.equal(r.err.trimEnd().split("\n").length, 1, r.err);
      assert.match(r.err.trimEnd(), want);
    });
  }
});

Deno.test("main() help: berth --help lists commands, each command has --help", async () => {
  const top = await run(["--help"]);
  assert.equal(top.code, 0);
  for (const c of ["agent", "services", "kv put", "raft peers", "snapshot save", "version"]) {
    assert.match(top.out, new RegExp(`^  ${c} `, "m"));
  }
  const kv = await run(["kv", "put", "--help"]);
  assert.equal(kv.code, 0);
  assert.match(kv.out, /^Usage: berth kv put KEY VALUE/);
  assert.match(kv.out, /--cas N/);
  assert.match(kv.out, /^ {2}--http-addr URL +agent API address/m);
  assert.match(kv.out, /^ {2}--token TOKEN +API ACL token/m);
  assert.match(kv.out, /^ {2}--token-file FILE +file holding the API ACL token/m);
  const group = await run(["kv", "--help"]);
  assert.match(group.out, /berth kv delete KEY/);
  const agent = await run(["agent", "--help"]);
  assert.equal(agent.code, 0);
  assert.match(agent.out, /^Usage: berth agent \[flags\]/);
  assert.match(agent.out, /--data-dir/);
});

Deno.test("main() agent delegates to runAgent with the arguments after agent", async () => {
  const x = io({}, (argv) => {
    assert.deepEqual(argv, ["--dev", "--node", "a"]);
    return Promise.resolve(7);
  });
  assert.equal(await main(["agent", "--dev", "--node", "a"], x.cio), 7);
  const none = io();
  assert.equal(await main(["agent"], none.cio), 1);
  assert.match(none.err(), /not available/);
});

Deno.test("main() names the unreachable agent in one line", async () => {
  // A port that was free a moment ago: nothing listens there.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const r = await run(["services"], { BERTH_HTTP_ADDR: `127.0.0.1:${port}` });
  assert.equal(r.code, 1);
  assert.equal(
    r.err,
    `berth: cannot reach the agent at http://127.0.0.1:${port} (connection refused); ` +
      "is `berth agent` running?\n",
  );
});

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/**
 * Runs the real `berth ARGV` with stdout piped into a reader that reads `readChunks` chunks and
 * then closes its end (like `head`); resolves with the exit code and stderr.
 */
async function runIntoClosingReader(
  argv: string[],
  env: Record<string, string>,
  readChunks: number,
): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...argv],
    env: { ...env, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  for (let i = 0; i < readChunks; i++) await reader.read();
  await reader.cancel(); // closes the pipe's read end
  const stderr = new TextDecoder().decode(
    new Uint8Array(await new Response(child.stderr).arrayBuffer()),
  );
  const { code } = await child.status;
  return { code, stderr };
}

Deno.test("main() ends quietly with EXIT_STDOUT_CLOSED when stdout's reader closes early", async () => {
  await withAgent(async (env) => {
    for (const argv of [["status"], ["members"], ["--help"]]) {
      // The reader is gone before the command writes anything: every write hits a closed pipe.
      const r = await runIntoClosingReader(argv, env, 0);
      assert.equal(r.stderr, "", `berth ${argv.join(" ")}`);
      assert.equal(r.code, EXIT_STDOUT_CLOSED, `berth ${argv.join(" ")}`);
    }
    // Like `berth status | head -1`: the first line read, then the pipe closed.
    const r = await runIntoClosingReader(["status"], env, 1);
    assert.equal(r.stderr, "");
    assert.ok(r.code === 0 || r.code === EXIT_STDOUT_CLOSED, `exit ${r.code}`);
  });
});
