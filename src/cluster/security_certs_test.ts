import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { closeAll, member, type TestMember, until } from "../../test/clusters.ts";
import { helloWith, TlsPeer } from "../../test/tls_peer.ts";
import { certInfo, generateKeyPair, issueCertificate } from "../pki/mod.ts";

/** A TLS cluster's first member, with its bootstrap join token. */
async function tlsBootstrap(): Promise<{ m: TestMember; token: string }> {
  const m = await member("a", "127.0.0.1", { bootstrap: true, tls: {} });
  await until("a CA in the store", () => m.store.pki.ca() !== undefined);
  return { m, token: m.cluster.bootstrapToken! };
}

/**
 * A data dir holding a certificate for `node` signed with the cluster's CA key (as anyone who
 * ever had a member's data dir can make) but never issued by the cluster.
 */
function forged(m: TestMember, node: string): string {
  const ca = m.store.pki.ca()!;
  const dir = Deno.makeTempDirSync({ prefix: "berth-forged-" });
  const keys = generateKeyPair();
  const cert = issueCertificate({
    ca,
    publicKeySpkiDer: keys.publicKeySpkiDer,
    node,
    clusterId: m.cluster.identity()!.clusterId,
    now: new Date(),
    ttlMs: 3_600_000,
  });
  Deno.writeTextFileSync(`${dir}/node.key`, keys.privateKeyPem);
  Deno.writeTextFileSync(`${dir}/node.crt`, cert.certPem);
  Deno.writeTextFileSync(`${dir}/ca.crt`, ca.certPem);
  return dir;
}

Deno.test("PeerCheck.verifyPeer: a certificate signed with the CA key but never recorded as issued is refused", async () => {
  const { m } = await tlsBootstrap();
  const outsider = forged(m, "ghost");
  const impostor = forged(m, "a");
  try {
    const clusterId = m.cluster.identity()!.clusterId;
    const anon = await helloWith(m.cluster.address, outsider, {
      clusterId: "",
      nodeId: 0,
      address: "127.0.0.9:1",
    });
    assert.equal(anon?.k, "reject");
    assert.match(String(anon?.reason), /certificate [0-9a-f]+ of ghost is not recorded as issued/);
    const asMember = await helloWith(m.cluster.address, impostor, {
      clusterId,
      nodeId: 1,
      address: "127.0.0.9:1",
    });
    assert.equal(asMember?.k, "reject");
    assert.match(String(asMember?.reason), /of a is not recorded as issued/);
  } finally {
    await closeAll([m]);
    Deno.removeSync(outsider, { recursive: true });
    Deno.removeSync(impostor, { recursive: true });
  }
});

Deno.test("RaftCluster with TLS: a joiner enrolls through a follower, and renewals keep three members working", async () => {
  const tls = { certTtlMs: 3000 };
  const a = await member("a", "127.0.0.1", { bootstrap: true, tls });
  await until("a CA in the store", () => a.store.pki.ca() !== undefined);
  const token = a.cluster.bootstrapToken!;
  const b = await member("b", "127.0.0.2", {
    join: [a.cluster.address],
    tls: { ...tls, joinToken: token },
  });
  await until("b is a member", () => b.store.members().length === 2);
  // b is a follower: it forwards c's enrollment and may answer c's join before it applied c's
  // certificate (refused until it has; the join retry gets in).
  const c = await member("c", "127.0.0.3", {
    join: [b.cluster.address],
    tls: { ...tls, joinToken: token },
  });
  const all = [a, b, c];
  try {
    await until("three voters", () => all.every((m) => m.store.confState().voters.length === 3));
    for (const m of all) {
      await until(
        `${m.name} renewed twice`,
        () => m.logs.filter((l) => /renewed this member's certificate/.test(l)).length >= 2,
      );
    }
    for (const [i, m] of all.entries()) {
      const key = `k${i}`;
      await m.cluster.propose({ type: "kv.put", key, value: new Uint8Array([i]), flags: 0 });
      await until(
        `every member has ${key}`,
        () => all.every((x) => x.store.kvGet(key) !== undefined),
      );
    }
    for (const m of all) {
      for (const x of all) {
        assert.ok(m.store.pki.certsOf(x.name).some((r) => !r.revoked), `${m.name} on ${x.name}`);
      }
    }
  } finally {
    await closeAll([c, b, a]);
  }
});

Deno.test("Issuer.renewRequest: a member gets a certificate for its own name only, never a name in the request", async () => {
  const dirB = Deno.makeTempDirSync({ prefix: "berth-tls-" });
  const { m, token } = await tlsBootstrap();
  const b = await member("b", "127.0.0.2", {
    join: [m.cluster.address],
    tls: { dir: dirB, joinToken: token },
  });
  const peer = await (async () => {
    await until("b is a member", () => b.store.members().length === 2);
    return await TlsPeer.connect(m.cluster.address, dirB);
  })();
  try {
    peer.send({
      k: "hello",
      v: 1,
      clusterId: m.cluster.identity()!.clusterId,
      nodeId: b.cluster.identity()!.id,
      address: b.cluster.address,
    });
    assert.equal((await peer.next())?.k, "welcome");
    const publicKey = generateKeyPair().publicKeySpkiDer;
    peer.send({ k: "req", id: 1, b: { t: "pki.renew", publicKey, node: "a" } });
    const other = await peer.next();
    assert.match(String(other?.err), /for the caller's own name \(b\), not a/);
    assert.equal(m.store.pki.certsOf("a").length, 1);
    peer.send({ k: "req", id: 2, b: { t: "pki.renew", publicKey } });
    const own = (await peer.next())?.b as { certPem: string };
    assert.equal(certInfo(own.certPem).node, "b");
  } finally {
    peer.close();
    await closeAll([b, m]);
    Deno.removeSync(dirB, { recursive: true });
  }
});

Deno.test("Security.prepareMember: a member stopped longer than its certificate's lifetime issues itself a new one and records it", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "berth-h2-" });
  const tls = { certTtlMs: 2000 };
  try {
    const first = await member("a", "127.0.0.1", { bootstrap: true, dataDir: dir, tls });
    await until("a CA in the store", () => first.store.pki.ca() !== undefined);
    await closeAll([first]);
    const notAfter = certInfo(Deno.readTextFileSync(`${dir}/node.crt`)).notAfter;
    await until("the certificate expired", () => Date.now() > notAfter + 1000, {
      timeoutMs: 10_000,
    });
    const m = await member("a", "127.0.0.1", { dataDir: dir, tls });
    try {
      assert.ok(
        m.logs.some((l) => /certificate expired at .*; issued itself/.test(l)),
        m.logs.join("\n"),
      );
      const serial = certInfo(Deno.readTextFileSync(`${dir}/node.crt`)).serial;
      await until("the new certificate recorded", () => m.store.pki.certStatus(serial) === "valid");
      await m.cluster.propose({ type: "kv.put", key: "k", value: new Uint8Array([1]), flags: 0 });
      assert.ok(m.store.kvGet("k") !== undefined);
    } finally {
      await closeAll([m]);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("PeerCheck.verifyPeer: a member's renewal this replica has not recorded (same key) is accepted; another key for that name is not", async () => {
  const dirB = Deno.makeTempDirSync({ prefix: "berth-tls-" });
  const renewed = Deno.makeTempDirSync({ prefix: "berth-renewed-" });
  const { m, token } = await tlsBootstrap();
  const b = await member("b", "127.0.0.2", {
    join: [m.cluster.address],
    tls: { dir: dirB, joinToken: token },
  });
  const otherKey = forged(m, "b");
  try {
    await until("b is a member", () => m.store.members().length === 2);
    // What a leader gives b at its renewal, as a replica sees it before applying that entry
    // (a member restarted on an older state): b's own key, a serial not in the store.
    const ca = m.store.pki.ca()!;
    const keyPem = Deno.readTextFileSync(`${dirB}/node.key`);
    const publicKey = new Uint8Array(
      createPublicKey(keyPem).export({ type: "spki", format: "der" }),
    );
    const cert = issueCertificate({
      ca,
      publicKeySpkiDer: publicKey,
      node: "b",
      clusterId: m.cluster.identity()!.clusterId,
      now: new Date(),
      ttlMs: 3_600_000,
    });
    assert.equal(m.store.pki.certStatus(cert.serial.toLowerCase()), "unknown");
    Deno.writeTextFileSync(`${renewed}/node.key`, keyPem);
    Deno.writeTextFileSync(`${renewed}/node.crt`, cert.certPem);
    Deno.writeTextFileSync(`${renewed}/ca.crt`, ca.certPem);
    const hello = {
      clusterId: m.cluster.identity()!.clusterId,
      nodeId: b.cluster.identity()!.id,
      address: b.cluster.address,
    };
    const same = await helloWith(m.cluster.address, renewed, hello);
    assert.equal(same?.k, "welcome", JSON.stringify(same));
    const other = await helloWith(m.cluster.address, otherKey, hello);
    assert.equal(other?.k, "reject");
    assert.match(String(other?.reason), /of b is not recorded as issued/);
  } finally {
    await closeAll([b, m]);
    for (const d of [dirB, renewed, otherKey]) Deno.removeSync(d, { recursive: true });
  }
});

Deno.test("PeerCheck.verifyPeer: a member's unrecorded certificate for another key gets in only once every certificate recorded for it expired (logged)", async () => {
  const tls = { certTtlMs: 3000 };
  const a = await member("a", "127.0.0.1", { bootstrap: true, tls });
  await until("a CA in the store", () => a.store.pki.ca() !== undefined);
  const token = a.cluster.bootstrapToken!;
  const b = await member("b", "127.0.0.2", {
    join: [a.cluster.address],
    tls: { ...tls, joinToken: token },
  });
  const c = await member("c", "127.0.0.3", {
    join: [a.cluster.address],
    tls: { ...tls, joinToken: token },
  });
  const other = forged(a, "c");
  try {
    await until("three voters", () => a.store.confState().voters.length === 3);
    const hello = {
      clusterId: a.cluster.identity()!.clusterId,
      nodeId: c.cluster.identity()!.id,
      address: c.cluster.address,
    };
    await closeAll([c]);
    const early = await helloWith(a.cluster.address, other, hello);
    assert.equal(early?.k, "reject", JSON.stringify(early));
    assert.match(String(early?.reason), /of c is not recorded as issued/);
    await until(
      "every certificate recorded for c expired",
      () => a.store.pki.certsOf("c").every((r) => r.notAfter <= Date.now()),
    );
    const late = await helloWith(a.cluster.address, other, hello);
    assert.equal(late?.k, "welcome", JSON.stringify(late));
    assert.ok(
      a.logs.some((l) => /accepted certificate [0-9a-f]+ of c, not recorded yet: every/.test(l)),
    );
  } finally {
    await closeAll([b, a]);
    Deno.removeSync(other, { recursive: true });
  }
});
