import assert from "node:assert/strict";
import { closeAll, leaderOf, member, type TestMember, until } from "../../test/clusters.ts";
import { TlsPeer } from "../../test/tls_peer.ts";
import { parseJoinToken } from "../lib/join_token.ts";
import { NodeCredentials } from "./credentials.ts";
import { enroll } from "./enroll.ts";

/** A TLS cluster's first member, with its bootstrap join token. */
async function tlsBootstrap(): Promise<{ m: TestMember; token: string }> {
  const m = await member("a", "127.0.0.1", { bootstrap: true, tls: {} });
  await until("a CA in the store", () => m.store.pki.ca() !== undefined);
  await leaderOf([m]);
  return { m, token: m.cluster.bootstrapToken! };
}

/** A certificate for `name` enrolled with `token` into a new dir, never used to join. */
async function enrolledOnly(addr: string, token: string, name: string): Promise<string> {
  const dir = Deno.makeTempDirSync({ prefix: "berth-tls-" });
  const creds = new NodeCredentials(dir);
  const got = await enroll({
    addr,
    token: parseJoinToken(token),
    name,
    publicKey: creds.publicKeyDer(),
    address: "127.0.0.9:1",
    timeoutMs: 5000,
  });
  creds.save(got.certPem, got.caPem);
  return dir;
}

/** Sends request `b` as number `id` and returns the answer frame. */
async function ask(peer: TlsPeer, id: number, b: unknown): Promise<Record<string, unknown>> {
  peer.send({ k: "req", id, b });
  const res = await peer.next();
  assert.ok(res !== null, "the member closed the connection");
  assert.equal(res.id, id);
  return res;
}

Deno.test("Rpc.onRequest(): a certificate holder that never joined may only join as its own name", async () => {
  const { m, token } = await tlsBootstrap();
  const dir = await enrolledOnly(m.cluster.address, token, "ghost");
  const peer = await TlsPeer.connect(m.cluster.address, dir);
  try {
    const clusterId = m.cluster.identity()!.clusterId;
    // An id above every id handed out: the hello cannot be checked against a member.
    peer.send({ k: "hello", v: 1, clusterId, nodeId: 99, address: "127.0.0.9:1" });
    assert.equal((await peer.next())?.k, "welcome");
    const refused = [
      { t: "members" },
      { t: "remove", id: 1 },
      { t: "transfer", to: 1 },
      { t: "session.renew", id: "s" },
      { t: "snap.chunk", x: 1 },
      { t: "pki.renew", publicKey: new Uint8Array(4) },
      { t: "pki.ca" },
      { t: "nonsense" },
    ];
    let id = 0;
    for (const b of refused) {
      const res = await ask(peer, ++id, b);
      assert.match(String(res.err), /^ghost is not a member: join the cluster first$/, b.t);
      assert.equal(res.code, "rejected", b.t);
    }
    const other = await ask(peer, ++id, {
      t: "join",
      name: "zz",
      address: "127.0.0.9:1",
      nonce: "n",
    });
    assert.match(String(other.err), /the certificate is for ghost, not zz/);
    const propose = await ask(peer, ++id, {
      t: "propose",
      id: "p",
      cmd: { type: "kv.put", key: "k", value: new Uint8Array([1]), flags: 0 },
    });
    assert.match(String(propose.err), /proposals are taken from members only/);
    assert.equal(m.store.kvGet("k"), undefined);
    assert.deepEqual(m.store.members().map((x) => x.name), ["a"]);
    // One line for the burst (rate-limited per remote host), naming the first request.
    const lines = m.logs.filter((l) => /refused a \S+ request from 127\.0\.0\.9:1/.test(l));
    assert.equal(lines.length, 1, m.logs.join("\n"));
    assert.match(lines[0]!, /refused a members request .*ghost is not a member/);
  } finally {
    peer.close();
    await closeAll([m]);
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Rpc.onRequest(): a removed member's open connection is refused from the removal on, a join included", async () => {
  const dirB = Deno.makeTempDirSync({ prefix: "berth-tls-" });
  const { m, token } = await tlsBootstrap();
  const b = await member("b", "127.0.0.2", {
    join: [m.cluster.address],
    tls: { dir: dirB, joinToken: token },
  });
  await until("b is a member", () => m.store.members().length === 2);
  const peer = await TlsPeer.connect(m.cluster.address, dirB);
  try {
    const clusterId = m.cluster.identity()!.clusterId;
    const bId = m.store.members().find((x) => x.name === "b")!.id;
    peer.send({ k: "hello", v: 1, clusterId, nodeId: bId, address: b.cluster.address });
    assert.equal((await peer.next())?.k, "welcome");
    assert.ok(Array.isArray((await ask(peer, 1, { t: "members" })).b), "a member may ask");
    await m.cluster.removePeer("b");
    // Before its connections are dropped, nothing gets through: not a join of its own name.
    const joinB = { t: "join", name: "b", address: b.cluster.address, nonce: "again" };
    const join = await ask(peer, 3, joinB);
    assert.match(String(join.err), /^certificate [0-9a-f]+ of b was revoked \(removed\)$/);
    assert.match(String((await ask(peer, 4, { t: "members" })).err), /revoked/);
    assert.deepEqual(m.store.members().map((x) => x.name), ["a"]);
  } finally {
    peer.close();
    await closeAll([b, m]);
    Deno.removeSync(dirB, { recursive: true });
  }
});

/** Counts the connections made to `host` (any port) while listening. */
function connectionsTo(host: string): { addr: string; count: () => number; close: () => void } {
  const l = Deno.listen({ hostname: host, port: 0 });
  let n = 0;
  (async () => {
    try {
      for await (const conn of l) {
        n++;
        conn.close();
      }
    } catch { /* closed */ }
  })();
  return {
    addr: `${host}:${(l.addr as Deno.NetAddr).port}`,
    count: () => n,
    close: () => l.close(),
  };
}

Deno.test("PeerCheck.verifyPeer(): a removed member is told at its recorded address, never at a third host its hello names", async () => {
  const dirB = Deno.makeTempDirSync({ prefix: "berth-tls-" });
  const { m, token } = await tlsBootstrap();
  const b = await member("b", "127.0.0.2", {
    join: [m.cluster.address],
    tls: { dir: dirB, joinToken: token },
  });
  const bId = (await until("b is a member", () => m.store.members().find((x) => x.name === "b")))
    .id;
  const recorded = m.store.members().find((x) => x.name === "b")!.address;
  await closeAll([b]);
  await m.cluster.removePeer("b");
  // b's recorded address and a third host stand in for the places a notice could go.
  const third = connectionsTo("127.0.0.66");
  const [host, port] = recorded.split(":");
  const atRecord = Deno.listen({ hostname: host!, port: Number(port) });
  let told = 0;
  (async () => {
    try {
      for await (const conn of atRecord) {
        told++;
        conn.close();
      }
    } catch { /* closed */ }
  })();
  try {
    const clusterId = m.cluster.identity()!.clusterId;
    // The peer connects from 127.0.0.1 and names 127.0.0.66 in its hello.
    const peer = await TlsPeer.connect(m.cluster.address, dirB);
    peer.send({ k: "hello", v: 1, clusterId, nodeId: bId, address: third.addr });
    assert.equal((await peer.next())?.k, "reject");
    peer.close();
    await until("the notice at b's recorded address", () => told > 0);
    assert.equal(third.count(), 0);
  } finally {
    third.close();
    atRecord.close();
    await closeAll([m]);
    Deno.removeSync(dirB, { recursive: true });
  }
});

Deno.test("Issuer.enrollRequest(): a follower refuses a bad join token itself (no leader needed), one line per remote host and kind of refusal", async () => {
  const { m: a, token } = await tlsBootstrap();
  const b = await member("b", "127.0.0.2", {
    join: [a.cluster.address],
    tls: { joinToken: token },
  });
  const dir = Deno.makeTempDirSync({ prefix: "berth-tls-" });
  try {
    await until("b is a member", () => b.store.members().length === 2);
    // Without a leader, a forwarded enrollment could not be answered at all.
    await closeAll([a]);
    const publicKey = new NodeCredentials(dir).publicKeyDer();
    const secret = token.slice(7, 39);
    const wrong = `${token.slice(0, 7)}${secret[0] === "A" ? "B" : "A"}${secret.slice(1)}`;
    const peer = await TlsPeer.connect(b.cluster.address);
    try {
      // Anonymous, though its hello claims member id 1.
      peer.send({ k: "hello", v: 1, clusterId: "", nodeId: 1, address: "127.0.0.9:1" });
      assert.equal((await peer.next())?.k, "welcome");
      const bad = [wrong, `zzzzzz.${secret}`, wrong];
      for (const [i, t] of bad.entries()) {
        const res = await ask(peer, i + 1, { t: "pki.enroll", token: t, name: "x", publicKey });
        assert.match(String(res.err), /wrong secret|is not known/);
        assert.equal(res.code, "rejected");
      }
    } finally {
      peer.close();
    }
    // One line per kind of refusal from this host: the repeated wrong secret is not logged again.
    const lines = b.logs.filter((l) => /refused to enroll x/.test(l));
    assert.equal(lines.length, 2, b.logs.join("\n"));
    assert.match(lines[0]!, /refused to enroll x \(127\.0\.0\.1\): join token \S+: wrong secret/);
    assert.match(lines[1]!, /refused to enroll x \(127\.0\.0\.1\): .*is not known/);
  } finally {
    await closeAll([b]);
    Deno.removeSync(dir, { recursive: true });
  }
});
