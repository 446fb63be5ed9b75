import assert from "node:assert/strict";
import { freePort } from "../test/harness.ts";
import { waitFor as until } from "../test/wait.ts";
import { Agent, runAgent } from "./agent.ts";
import { loadConfig } from "./config.ts";
import { closeAll, member } from "../test/clusters.ts";
import { MANAGEMENT_TOKEN_FILE } from "./acl/bootstrap.ts";
import { resolveToken } from "./acl/mod.ts";

/** `berth agent` flags for an agent on `host` with fresh ports, no Docker, no proxy. */
async function agentArgs(node: string, host: string, dataDir: string, extra: string[] = []) {
  const http = await freePort(host);
  const args = [
    "--node",
    node,
    "--data-dir",
    dataDir,
    "--bind",
    `${host}:${await freePort(host)}`,
    "--http",
    `${host}:${http}`,
    "--dns",
    `${host}:${await freePort(host)}`,
    "--proxy-http",
    "off",
    "--proxy-https",
    "off",
    "--docker",
    "off",
    // About membership, not DNS: answering on the main thread spares starting (and, under
    // `deno test`, type-checking) worker threads, which on a loaded machine took longer than
    // the waits below.
    "--dns-workers",
    "1",
    // These tests are about membership, not ACLs (src/api/acl_enforce_test.ts).
    "--acl-default",
    "allow",
    ...extra,
  ];
  return { args, httpUrl: `http://${host}:${http}` };
}

/** Runs `fn` with console.error collected into `lines` (runAgent logs there). */
async function capturingStderr<T>(lines: string[], fn: () => Promise<T>): Promise<T> {
  const orig = console.error;
  console.error = (...a: unknown[]) => void lines.push(a.map(String).join(" "));
  try {
    return await fn();
  } finally {
    console.error = orig;
  }
}

Deno.test("runAgent() after berth leave says it left once and returns 0", async () => {
  const a = await member("a", "127.0.0.1", { bootstrap: true, tls: {} });
  const dataDir = Deno.makeTempDirSync({ prefix: "berth-agent-test-" });
  const lines: string[] = [];
  try {
    const { args, httpUrl } = await agentArgs("b", "127.0.0.2", dataDir, [
      "--join",
      a.cluster.address,
      "--join-token",
      a.cluster.bootstrapToken!,
    ]);
    const code = await capturingStderr(lines, async () => {
      const run = runAgent(args);
      await until("b is a member", () => a.store.members().some((m) => m.name === "b"));
      const r = await until("leave accepted", async () => {
        const r = await fetch(`${httpUrl}/v1/agent/leave`, { method: "PUT" });
        await r.body?.cancel();
        return r.status === 200 ? r : undefined;
      }, { timeoutMs: 60_000 });
      assert.equal(r.status, 200);
      return await run;
    });
    assert.equal(code, 0);
    assert.equal(
      lines.filter((l) => /left the cluster/.test(l)).length,
      1,
      lines.join("\n"),
    );
    assert.ok(!a.store.members().some((m) => m.name === "b"));
  } finally {
    await closeAll([a]);
    Deno.removeSync(dataDir, { recursive: true });
  }
});

Deno.test("runAgent() with an --access-log path that cannot be opened exits 1 with one line before it joins or bootstraps", async () => {
  const a = await member("a", "127.0.0.1", { bootstrap: true, tls: {} });
  const dataDir = Deno.makeTempDirSync({ prefix: "berth-agent-test-" });
  const bad = `${dataDir}/no-such-dir/access.log`;
  /** The flags of agentArgs with a proxy listener (the access log is the proxy's) and `bad`. */
  const withLog = async (cluster: string[]) => {
    const { args } = await agentArgs("b", "127.0.0.2", `${dataDir}/data`, [
      ...cluster,
      "--access-log",
      bad,
    ]);
    args[args.indexOf("--proxy-http") + 1] = `127.0.0.2:${await freePort("127.0.0.2")}`;
    return args;
  };
  try {
    const join = ["--join", a.cluster.address, "--join-token", a.cluster.bootstrapToken!];
    for (const cluster of [join, ["--bootstrap"]]) {
      const lines: string[] = [];
      const code = await capturingStderr(lines, async () => runAgent(await withLog(cluster)));
      assert.equal(code, 1);
      assert.equal(lines.length, 1, lines.join("\n"));
      assert.match(
        lines[0]!,
        /^berth agent: cannot start: access log .*no-such-dir\/access\.log: /,
      );
      // Nothing was written: no data directory, no join.
      assert.deepEqual([...Deno.readDirSync(dataDir)], []);
    }
    assert.deepEqual(a.store.members().map((m) => m.name), ["a"]);
  } finally {
    await closeAll([a]);
    Deno.removeSync(dataDir, { recursive: true });
  }
});

Deno.test("Agent joining a cluster has its catalog node before any member lists it", async () => {
  const a = await member("a", "127.0.0.1", { bootstrap: true, tls: {} });
  const dataDir = Deno.makeTempDirSync({ prefix: "berth-agent-test-" });
  // Every change a's replica applies: a member b without a node b is what clients must not see.
  const seen: string[] = [];
  const unsubscribe = a.store.subscribe(() => {
    if (a.store.members().some((m) => m.name === "b")) {
      seen.push(a.store.node("b") === undefined ? "member without node" : "member with node");
    }
  });
  let agent: Agent | undefined;
  try {
    const { args } = await agentArgs("b", "127.0.0.2", dataDir, [
      "--join",
      a.cluster.address,
      "--join-token",
      a.cluster.bootstrapToken!,
    ]);
    agent = await Agent.start(loadConfig(args, { env: {} }), { log: () => {} });
    await until("b is a member", () => a.store.members().some((m) => m.name === "b"));
    assert.deepEqual(seen.filter((x) => x === "member without node"), []);
    const node = a.store.node("b")!;
    assert.equal(node.address, "127.0.0.2");
    assert.equal(node.status, "alive");
    assert.equal(node.meta.proxy, "false");
  } finally {
    unsubscribe();
    await agent?.stop();
    await closeAll([a]);
    Deno.removeSync(dataDir, { recursive: true });
  }
});

Deno.test("runAgent() of a member removed while it was down exits 1 with the removal message", async () => {
  // a keeps one voter: b stays a learner, which never campaigns (nothing but a hello tells it).
  const a = await member("a", "127.0.0.1", { bootstrap: true, voters: 1, tls: {} });
  const dataDir = Deno.makeTempDirSync({ prefix: "berth-agent-test-" });
  const lines: string[] = [];
  try {
    const { args } = await agentArgs("b", "127.0.0.2", dataDir, [
      "--join",
      a.cluster.address,
      "--join-token",
      a.cluster.bootstrapToken!,
    ]);
    const first = await Agent.start(loadConfig(args, { env: {} }), { log: () => {} });
    await until("b caught up", () => first.store.members().length === 2);
    await first.stop();
    await a.cluster.removePeer("b");
    const restart = await agentArgs("b", "127.0.0.2", dataDir);
    // Bounded: a removed member that keeps running would never return.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const code = await capturingStderr(lines, () =>
      Promise.race([
        runAgent(restart.args),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("b kept running after its removal")), 30_000);
        }),
      ]).finally(() => clearTimeout(timer)));
    assert.equal(code, 1);
    assert.ok(
      lines.some((l) =>
        /this member \(id 2\) was removed from cluster \S+; to join again, start with an empty --data-dir and --join/
          .test(l)
      ),
      lines.join("\n"),
    );
  } finally {
    await closeAll([a]);
    Deno.removeSync(dataDir, { recursive: true });
  }
});

Deno.test("Agent --bootstrap shows the ACL management token once, writes it 0600, never logs it", async () => {
  const dataDir = Deno.makeTempDirSync({ prefix: "berth-agent-test-" });
  const out: string[] = [];
  const logs: string[] = [];
  let agent: Agent | undefined;
  try {
    const { args } = await agentArgs("a", "127.0.0.1", dataDir, ["--bootstrap"]);
    const opts = {
      log: (l: string) => logs.push(l),
      out: (l: string) => out.push(l),
      terminal: true,
    };
    agent = await Agent.start(loadConfig(args, { env: {} }), opts);
    const path = `${dataDir}/${MANAGEMENT_TOKEN_FILE}`;
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    const secret = Deno.readTextFileSync(path).trim();
    assert.match(secret, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.deepEqual(out.filter((l) => /ACL/.test(l)), [
      `berth: ACL management token (shown once; also in ${path}): ${secret}`,
    ]);
    const store = agent.store;
    const found = await until("the bootstrap entries applied", () => {
      const r = resolveToken(store, secret, "deny");
      return "error" in r ? undefined : r;
    });
    assert.equal(found.authz.management, true);
    assert.equal(agent.store.aclTokens().length, 2); // with the anonymous token
    // A restart of the same member makes no new token and shows nothing.
    await agent.stop();
    agent = await Agent.start(loadConfig(args, { env: {} }), opts);
    assert.equal(out.length, 2); // the management token and the join token, from the first start
    assert.equal(Deno.readTextFileSync(path).trim(), secret);
    assert.equal(agent.store.aclTokens().length, 2);
    assert.ok(logs.length > 0);
    assert.ok(!logs.some((l) => l.includes(secret)), "the secret is in no log line");
  } finally {
    await agent?.stop();
    Deno.removeSync(dataDir, { recursive: true });
  }
});

Deno.test("Agent --bootstrap shows no secret when stdout is no terminal (journald, docker logs), only the files", async () => {
  const dataDir = Deno.makeTempDirSync({ prefix: "berth-agent-test-" });
  const out: string[] = [];
  let agent: Agent | undefined;
  try {
    const { args } = await agentArgs("a", "127.0.0.1", dataDir, ["--bootstrap"]);
    const opts = { log: () => {}, out: (l: string) => out.push(l), terminal: false };
    agent = await Agent.start(loadConfig(args, { env: {} }), opts);
    const management = `${dataDir}/${MANAGEMENT_TOKEN_FILE}`;
    const join = `${dataDir}/join-token`;
    assert.deepEqual(out, [
      `berth: ACL management token written to ${management} (its secret is shown only on a terminal)`,
      `berth: join token for new members (valid 24h) written to ${join} (its secret is shown only on a terminal)`,
    ]);
    const secrets = [Deno.readTextFileSync(management).trim(), Deno.readTextFileSync(join).trim()];
    assert.ok(secrets.every((x) => x.length >= 32));
    assert.ok(!out.some((l) => secrets.some((x) => l.includes(x))), "no secret shown");
  } finally {
    await agent?.stop();
    Deno.removeSync(dataDir, { recursive: true });
  }
});

Deno.test("Agent --bootstrap shows the join token once, writes it 0600 with the CA and its key, never logs it", async () => {
  const dataDir = Deno.makeTempDirSync({ prefix: "berth-agent-test-" });
  const out: string[] = [];
  const logs: string[] = [];
  let agent: Agent | undefined;
  try {
    const { args } = await agentArgs("a", "127.0.0.1", dataDir, ["--bootstrap"]);
    const opts = {
      log: (l: string) => logs.push(l),
      out: (l: string) => out.push(l),
      terminal: true,
    };
    agent = await Agent.start(loadConfig(args, { env: {} }), opts);
    const path = `${dataDir}/join-token`;
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.equal(Deno.statSync(`${dataDir}/node.key`).mode! & 0o777, 0o600);
    const token = Deno.readTextFileSync(path).trim();
    const secret = token.slice(7, 39);
    assert.deepEqual(out.filter((l) => /join token/.test(l)), [
      `berth: join token for new members (valid 24h) (shown once; also in ${path}): ${token}`,
    ]);
    const ca = Deno.readTextFileSync(`${dataDir}/ca.crt`);
    const store = agent.store;
    await until("the CA in the store", () => store.pki.ca()?.certPem === ca);
    await agent.stop();
    agent = await Agent.start(loadConfig(args, { env: {} }), opts);
    assert.equal(out.filter((l) => /join token/.test(l)).length, 1, "shown only at bootstrap");
    assert.ok(!logs.some((l) => l.includes(secret)), "the secret is in no log line");
    assert.ok(!logs.some((l) => l.includes("PRIVATE KEY")), "no key in a log line");
  } finally {
    await agent?.stop();
    Deno.removeSync(dataDir, { recursive: true });
  }
});
