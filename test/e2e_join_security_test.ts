/**
 * End to end, real processes: who gets into a cluster with mutual TLS. A joiner with the right
 * join token joins; one with none, a wrong, expired, used-up or revoked token (or the token of
 * another CA) is refused with a log line on each side and gets nothing replicated; a removed
 * member coming back with its old data directory (or anyone holding its certificate) cannot
 * connect, read or propose; certificates renew across a leader change; a cluster stopped
 * longer than the certificates' lifetime comes back by itself, every member keeping its id; so
 * does one member stopped that long while the others run (a fresh join token it is given is not
 * needed and stays unspent: a token never enrolls a current member's name).
 *
 * Run under the e2e lock: `flock /tmp/berth-e2e.lock deno test -A test/e2e_join_security_test.ts`.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import {
  type AgentProc,
  apiJson,
  berthCli,
  joinTokenOf,
  kvGet,
  kvPut,
  leaderOf,
  PERMISSIONS,
  portsOf,
  startAgent,
  startCluster,
  stopAll,
  uniq,
} from "./harness.ts";
import { waitFor } from "./wait.ts";
import { Store } from "../src/store/mod.ts";
import { helloWith } from "./tls_peer.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

/** A joiner (no Docker) through `via` with `joinToken` (null: none). */
function joiner(via: AgentProc, joinToken: string | null, host = "127.0.0.2", args: string[] = []) {
  return startAgent({
    node: uniq("j-"),
    host,
    bootstrap: false,
    join: [via.clusterAddr],
    joinToken,
    docker: false,
    args,
  });
}

/**
 * Restarts member `a` on its data directory and ports, expecting it to stop by itself (refused
 * or removed): its exit code and stderr. Bounded: a member that keeps running is killed.
 */
async function runToExit(
  a: AgentProc,
  args: string[] = [],
): Promise<{ code: number; err: string }> {
  const p = portsOf(a);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...PERMISSIONS,
      new URL("../src/main.ts", import.meta.url).pathname,
      "agent",
      ...["--node", a.node, "--data-dir", a.dataDir, "--docker", "off"],
      ...["--http", `${a.host}:${p.http}`, "--dns", `${a.host}:${p.dns}`],
      ...["--proxy-http", `${a.host}:${p.proxy}`, "--bind", `${a.host}:${p.bind}`],
      ...["--proxy-https", `${a.host}:${p.https}`],
      ...["--acl-default", "allow", ...args],
    ],
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const out = await child.output();
  clearTimeout(timer);
  return { code: out.code, err: new TextDecoder().decode(out.stderr) };
}

/** Waits for a line matching `re` in the agent's log; returns it. */
async function logLine(a: AgentProc, re: RegExp, what: string): Promise<string> {
  return await waitFor(`${a.node}: ${what}`, () => a.log().split("\n").find((l) => re.test(l)), {
    timeoutMs: 30_000,
  });
}

/** The serial of the certificate in an agent's data directory. */
function serialOf(dataDir: string): { serial: string; notAfter: number } {
  const x = new X509Certificate(Deno.readTextFileSync(`${dataDir}/node.crt`));
  return { serial: x.serialNumber, notAfter: x.validToDate.getTime() };
}

/** Asserts that `a` is in no cluster and has none of the cluster's data. */
async function outside(a: AgentProc, key: string): Promise<void> {
  const st = await apiJson(a, "/v1/berth/status") as { role: string; leader: string | null };
  assert.equal(st.leader, null, `${a.node} sees a leader`);
  assert.equal(await kvGet(a, key, { mode: "stale" }), null, `${a.node} has ${key}`);
}

Deno.test({
  name: "e2e join security: the right token joins; none, wrong, expired, used-up, revoked or " +
    "another CA's token is refused with a line on each side and nothing replicated",
  ...e2e,
  async fn() {
    const first = await startAgent({ host: "127.0.0.1", docker: false });
    const started: AgentProc[] = [first];
    try {
      assert.equal(await kvPut(first, "cluster-only", "secret data"), true);
      const token = joinTokenOf(first);
      const secretOf = (t: string) => t.slice(7, 39);

      // The right token: enrolled, joined, replicated.
      const good = await joiner(first, token);
      started.push(good);
      await waitFor(
        "the good joiner has the cluster's data",
        async () => (await kvGet(good, "cluster-only", { mode: "stale" }))?.value === "secret data",
      );
      await logLine(good, /enrolled through .*: certificate \w+ for /, "its enrollment");

      const create = async (...args: string[]) => {
        const r = await berthCli(first, "token", "create", ...args);
        assert.equal(r.code, 0, r.out);
        return r.out.split("\n")[0]!.trim();
      };
      const wrong = token.replace(/\.(.)/, (_, c) => `.${c === "A" ? "B" : "A"}`);
      const expired = await create("--ttl", "1s");
      const once = await create("--uses", "1");
      const revoked = await create("--description", "to revoke");
      const revokedId = revoked.slice(0, 6);
      const rv = await berthCli(first, "token", "revoke", revokedId);
      assert.equal(rv.code, 0, rv.out);
      const list = await berthCli(first, "token", "list");
      assert.match(list.out, new RegExp(`${revokedId} .* to revoke`));
      assert.ok(!list.out.includes(secretOf(revoked)), "token list never shows a secret");
      // Spend the single use, and let the short one expire.
      const user = await joiner(first, once, "127.0.0.3");
      started.push(user);
      await logLine(user, /enrolled through/, "the one use of its token");
      await new Promise((r) => setTimeout(r, 1500));

      const cases: [string, string | null, RegExp, RegExp][] = [
        ["no token", null, /joining needs a join token/, /request "join" from a peer without/],
        ["a wrong secret", wrong, /wrong secret/, /refused to enroll .*: join token \w+: wrong/],
        ["an expired token", expired, /has expired/, /refused to enroll .*has expired/],
        ["a used-up token", once, /is used up/, /refused to enroll .*is used up/],
        ["a revoked token", revoked, /was revoked/, /refused to enroll .*was revoked/],
      ];
      for (const [what, t, joinerSays, clusterSays] of cases) {
        const before = first.log().length;
        const j = await joiner(first, t, "127.0.0.4");
        started.push(j);
        const line = await logLine(j, /cannot join through/, `its refusal (${what})`);
        assert.match(line, joinerSays, what);
        await waitFor(
          `the cluster's refusal (${what})`,
          () => clusterSays.test(first.log().slice(before)),
        );
        if (t !== null) {
          assert.ok(!j.log().includes(secretOf(t)), `${what}: the secret in the joiner's log`);
          assert.ok(!first.log().includes(secretOf(t)), `${what}: the secret in the cluster's log`);
        }
        await outside(j, "cluster-only");
        const ms = await apiJson(first, "/v1/berth/members") as { name: string }[];
        assert.ok(!ms.some((m) => m.name === j.node), `${what}: ${j.node} became a member`);
        await j.stop();
      }

      // Another CA's pin: the joiner stops before it sends the secret; the cluster sees no try.
      const otherPin = `${token.slice(0, 48)}${"0".repeat(64)}`;
      const before = first.log().length;
      const p = await joiner(first, otherPin, "127.0.0.5");
      started.push(p);
      assert.match(
        await logLine(p, /cannot join through/, "its refusal (pin)"),
        /not the cluster this token is for; the secret was not sent/,
      );
      assert.doesNotMatch(first.log().slice(before), /refused to enroll|enrolled/);
      await outside(p, "cluster-only");
    } finally {
      await stopAll(started);
    }
  },
});

Deno.test({
  name: "e2e join security: a removed member with its old data dir (or its stolen certificate) " +
    "cannot connect, read or propose",
  ...e2e,
  async fn() {
    const agents = await startCluster(3);
    try {
      const [m1, , m3] = agents as [AgentProc, AgentProc, AgentProc];
      const { id } = (await apiJson(m1, "/v1/berth/members") as { name: string; id: number }[])
        .find((m) => m.name === m3.node)!;
      const clusterId = new X509Certificate(Deno.readTextFileSync(`${m1.dataDir}/node.crt`))
        .subjectAltName!.match(/berth:\/\/([^/]+)\//)![1]!;
      await m3.stop();
      const removed = await berthCli(m1, "raft", "remove-peer", m3.node);
      assert.equal(removed.code, 0, removed.out);
      assert.equal(await kvPut(m1, "after-removal", "not for m3"), true);

      // Its certificate, used by anyone: refused at the hello, as a member or as a joiner.
      for (const nodeId of [id, 0]) {
        const frame = await helloWith(m1.clusterAddr, m3.dataDir, {
          clusterId: nodeId === 0 ? "" : clusterId,
          nodeId,
          address: `${m3.host}:${m3.bindPort}`,
        });
        assert.equal(frame?.k, "reject", `hello as id ${nodeId}: ${JSON.stringify(frame)}`);
        assert.match(String(frame?.reason), /revoked|was removed/);
      }
      assert.match(m1.log(), new RegExp(`rejected connection from .*(revoked|was removed)`));

      // Restarted with its old data: refused, told it was removed, it stops.
      const back = await runToExit(m3);
      assert.equal(back.code, 1, back.err);
      assert.match(back.err, /this member \(id \d+\) was removed from cluster/);
      const store = Store.open(`${m3.dataDir}/store.db`);
      try {
        assert.equal(store.kvGet("after-removal"), undefined, "m3 read data after its removal");
      } finally {
        store.close();
      }
      // The cluster goes on without it.
      assert.equal(await kvPut(agents[1]!, "still", "working"), true);
    } finally {
      await stopAll(agents);
    }
  },
});

Deno.test({
  name: "e2e join security: certificates renew across a leader change (--cert-ttl 1m)",
  ...e2e,
  async fn() {
    const agents = await startCluster(3, { args: ["--cert-ttl", "1m"] });
    try {
      const leader = await leaderOf(agents[0]!);
      const old = agents.find((a) => a.node === leader)!;
      const survivors = agents.filter((a) => a !== old);
      const before = survivors.map((a) => serialOf(a.dataDir).serial);
      await old.kill();
      await waitFor("a new leader", async () => {
        const l = await leaderOf(survivors[0]!).catch(() => null);
        return l !== null && l !== leader;
      }, { timeoutMs: 30_000 });
      // Renewed at 2/3 of the minute, through the new leader. The member writes the new
      // certificate, then logs it: wait for both (a loaded run once read the log in between).
      await waitFor(
        "both survivors renewed their certificates",
        () =>
          survivors.every((a, i) =>
            serialOf(a.dataDir).serial !== before[i] &&
            /renewed this member's certificate/.test(a.log())
          ),
        {
          timeoutMs: 90_000,
          intervalMs: 500,
        },
      );
      for (const a of survivors) assert.ok(serialOf(a.dataDir).notAfter > Date.now());
      assert.equal(await kvPut(survivors[0]!, "after-renewal", "yes"), true);
      await waitFor(
        "the write on the other survivor",
        async () =>
          (await kvGet(survivors[1]!, "after-renewal", { mode: "stale" }))?.value === "yes",
      );
    } finally {
      await stopAll(agents);
    }
  },
});

Deno.test({
  name: "e2e join security: a cluster stopped longer than --cert-ttl comes back without tokens, " +
    "each member issuing itself a certificate and keeping its id",
  ...e2e,
  async fn() {
    const agents = await startCluster(3, { args: ["--cert-ttl", "1m"] });
    try {
      const members = async (a: AgentProc) =>
        (await apiJson(a, "/v1/berth/members") as { name: string; id: number }[])
          .map((m) => `${m.name}=${m.id}`).sort();
      const before = await members(agents[0]!);
      assert.equal(await kvPut(agents[0]!, "before-stop", "yes"), true);
      await stopAll(agents);
      const notAfter = Math.max(...agents.map((a) => serialOf(a.dataDir).notAfter));
      await new Promise((r) => setTimeout(r, Math.max(0, notAfter - Date.now()) + 1000));

      for (const [i, a] of agents.entries()) {
        agents[i] = await startAgent({
          node: a.node,
          dataDir: a.dataDir,
          host: a.host,
          ports: portsOf(a),
          bootstrap: false,
          docker: false,
          args: ["--cert-ttl", "1m"],
        });
      }
      for (const a of agents) {
        await waitFor(
          `${a.node} recorded its new certificate`,
          () => /recorded this member's certificate/.test(a.log()),
        );
        assert.match(
          a.log(),
          /certificate expired at .*; issued itself [0-9a-f]+ from the cluster CA/,
        );
        assert.ok(serialOf(a.dataDir).notAfter > Date.now());
      }
      // Each self-issued certificate has its member's recorded key: the others let it in before
      // it was recorded (PeerCheck's renewal rule; the restart exception is for another key).
      for (const a of agents) assert.doesNotMatch(a.log(), /not recorded as issued/, a.node);
      assert.equal(await kvPut(agents[2]!, "after-restart", "yes"), true);
      await waitFor(
        "the write on the first member",
        async () => (await kvGet(agents[0]!, "after-restart", { mode: "stale" }))?.value === "yes",
      );
      assert.equal((await kvGet(agents[1]!, "before-stop", { mode: "stale" }))?.value, "yes");
      assert.deepEqual(await members(agents[0]!), before, "every member kept its id");
    } finally {
      await stopAll(agents);
    }
  },
});

Deno.test({
  name: "e2e join security: a member stopped longer than --cert-ttl while the others run comes " +
    "back with a fresh --join-token (left unused), keeping its id and catching up",
  ...e2e,
  async fn() {
    const agents = await startCluster(3, { args: ["--cert-ttl", "1m"] });
    try {
      const [m1, m2, m3] = agents as [AgentProc, AgentProc, AgentProc];
      const memberId = async (a: AgentProc, name: string) =>
        (await apiJson(a, "/v1/berth/members") as { name: string; id: number }[])
          .find((m) => m.name === name)?.id;
      const id = await memberId(m1, m3.node);
      assert.ok(id !== undefined);
      const own = serialOf(m3.dataDir);
      const peers = [m1, m2].map((a) => serialOf(a.dataDir).serial);
      await m3.stop();
      assert.equal(await kvPut(m1, "while-stopped", "yes"), true);
      const made = await berthCli(m1, "token", "create", "--uses", "1", "--description", "back");
      assert.equal(made.code, 0, made.out);
      const token = made.out.split("\n")[0]!.trim();
      // Past its certificate's end, and until both others renewed theirs meanwhile (its state
      // records their old certificates only).
      await waitFor(
        "m3's certificate expired and both others renewed",
        () =>
          Date.now() > own.notAfter + 1000 &&
          [m1, m2].every((a, i) => serialOf(a.dataDir).serial !== peers[i]),
        { timeoutMs: 120_000, intervalMs: 500 },
      );

      const back = await startAgent({
        node: m3.node,
        dataDir: m3.dataDir,
        host: m3.host,
        ports: portsOf(m3),
        bootstrap: false,
        join: [m1.clusterAddr],
        joinToken: token,
        docker: false,
        args: ["--cert-ttl", "1m"],
      });
      agents[2] = back;
      assert.match(
        await logLine(back, /certificate expired at/, "its expired certificate"),
        /issued itself [0-9a-f]+ from the cluster CA .*the join token is left unused/,
      );
      await logLine(back, /recorded this member's certificate/, "its new certificate recorded");
      await waitFor(
        "the write made while it was stopped",
        async () => (await kvGet(back, "while-stopped", { mode: "stale" }))?.value === "yes",
      );
      assert.ok(serialOf(back.dataDir).notAfter > Date.now());
      // It let the others in with the certificates they renewed while it was stopped.
      assert.doesNotMatch(back.log(), /not recorded as issued/);
      assert.equal(await kvPut(back, "after-return", "yes"), true);
      assert.equal(await memberId(m1, back.node), id, "it kept its member id");
      const listed = await berthCli(m1, "token", "list", "--json");
      assert.equal(listed.code, 0, listed.out);
      const tokens = JSON.parse(listed.out) as { id: string; usesLeft: number }[];
      const fresh = tokens.find((t) => t.id === token.split(".")[0]);
      assert.equal(fresh?.usesLeft, 1, "the fresh token was not spent");
    } finally {
      await stopAll(agents);
    }
  },
});
