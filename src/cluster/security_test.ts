import assert from "node:assert/strict";
import { closeAll, member, type TestMember, until } from "../../test/clusters.ts";
import { helloWith, TlsPeer } from "../../test/tls_peer.ts";
import { CLOCK_SKEW_MS } from "../pki/mod.ts";
import { BOOTSTRAP_TOKEN_TTL_MS, renewAt } from "./_security.ts";

/** A TLS cluster's first member, with its bootstrap join token. */
async function tlsBootstrap(): Promise<{ m: TestMember; token: string }> {
  const m = await member("a", "127.0.0.1", { bootstrap: true, tls: {} });
  const token = m.cluster.bootstrapToken!;
  assert.match(token, /^[a-z0-9]{6}\.[A-Za-z0-9_-]{32}::sha256:[0-9a-f]{64}$/);
  await until("a CA in the store", () => m.store.pki.ca() !== undefined);
  return { m, token };
}

Deno.test("RaftCluster with TLS: a joiner with the bootstrap token enrolls, joins and replicates", async () => {
  const { m, token } = await tlsBootstrap();
  const b = await member("b", "127.0.0.2", {
    join: [m.cluster.address],
    tls: { joinToken: token },
  });
  try {
    await until("b is a member", () => b.cluster.identity() !== undefined);
    await m.cluster.propose({ type: "kv.put", key: "k", value: new Uint8Array([1]), flags: 0 });
    await until("b has the write", () => b.store.kvGet("k") !== undefined);
    assert.ok(m.store.pki.certsOf("b").length === 1, "b's certificate is recorded");
    assert.ok(m.logs.some((l) => /enrolled b with join token/.test(l)), m.logs.join("\n"));
  } finally {
    await closeAll([b, m]);
  }
});

Deno.test("RaftCluster with TLS: the bootstrap join token expires 24h after the bootstrap, any number of joins", async () => {
  const { m, token } = await tlsBootstrap();
  try {
    const t = m.store.pki.token(token.slice(0, 6))!;
    assert.equal(BOOTSTRAP_TOKEN_TTL_MS, 24 * 3_600_000);
    assert.equal(t.expires, t.created + BOOTSTRAP_TOKEN_TTL_MS);
    assert.equal(t.usesLeft, null);
    assert.equal(t.description, "bootstrap");
  } finally {
    await closeAll([m]);
  }
});

Deno.test("RaftCluster with TLS: a wrong token is refused with a line on both sides, nothing replicated", async () => {
  const { m, token } = await tlsBootstrap();
  const wrong = token.replace(/\.(.)/, (_, c) => `.${c === "A" ? "B" : "A"}`);
  const b = await member("b", "127.0.0.2", {
    join: [m.cluster.address],
    tls: { joinToken: wrong },
  });
  try {
    await until("b's refusal", () => b.logs.some((l) => /cannot join through/.test(l)));
    await until("a's refusal", () => m.logs.some((l) => /refused to enroll b/.test(l)));
    const secret = wrong.slice(7, 39);
    for (const l of [...m.logs, ...b.logs]) assert.ok(!l.includes(secret), l);
    assert.match(b.logs.find((l) => /cannot join through/.test(l))!, /wrong secret/);
    assert.equal(b.cluster.identity(), undefined);
    assert.equal(b.store.appliedIndex(), 0);
  } finally {
    await closeAll([b, m]);
  }
});

Deno.test("renewAt() is 2/3 into the lifetime counted from the issue time (notBefore + skew)", () => {
  const issued = 10_000_000;
  const info = { notBefore: issued - CLOCK_SKEW_MS, notAfter: issued + 60_000 };
  assert.equal(renewAt(info), issued + 40_000);
  // A certificate shorter than the skew (cut to its CA's end): 2/3 of what is there.
  assert.equal(renewAt({ notBefore: 0, notAfter: 3000 }), 2000);
});

Deno.test("RaftCluster with TLS: a member renews its certificate through the leader and keeps working", async () => {
  const m = await member("a", "127.0.0.1", { bootstrap: true, tls: { certTtlMs: 3000 } });
  await until("a CA in the store", () => m.store.pki.ca() !== undefined);
  const b = await member("b", "127.0.0.2", {
    join: [m.cluster.address],
    tls: { joinToken: m.cluster.bootstrapToken!, certTtlMs: 3000 },
  });
  try {
    await until("b is a member", () => b.cluster.identity() !== undefined);
    const first = m.store.pki.certsOf("b").map((c) => c.serial);
    await until("b renewed", () => b.logs.some((l) => /renewed this member's certificate/.test(l)));
    await until(
      "a recorded b's new certificate",
      () => m.store.pki.certsOf("b").some((c) => !first.includes(c.serial)),
    );
    await b.cluster.propose({ type: "kv.put", key: "k", value: new Uint8Array([1]), flags: 0 });
    await until("a has b's write", () => m.store.kvGet("k") !== undefined);
  } finally {
    await closeAll([b, m]);
  }
});

Deno.test("RaftCluster with TLS: a certificate is refused for another member's id and for a join under another name", async () => {
  const dirB = Deno.makeTempDirSync({ prefix: "berth-tls-" });
  const { m, token } = await tlsBootstrap();
  const b = await member("b", "127.0.0.2", {
    join: [m.cluster.address],
    tls: { dir: dirB, joinToken: token },
  });
  try {
    await until("b is a member", () => b.cluster.identity() !== undefined);
    const clusterId = m.cluster.identity()!.clusterId;
    const claim = await helloWith(m.cluster.address, dirB, {
      clusterId,
      nodeId: 1,
      address: "127.0.0.2:1",
    });
    assert.equal(claim?.k, "reject");
    assert.match(String(claim?.reason), /hello claims member id 1 \(a\) with a certificate for b/);
    // Not a member yet (id 0): only a join, and only as the certificate's node.
    const peer = await TlsPeer.connect(m.cluster.address, dirB);
    try {
      peer.send({ k: "hello", v: 1, clusterId: "", nodeId: 0, address: "127.0.0.2:1" });
      assert.equal((await peer.next())?.k, "welcome");
      peer.send({ k: "req", id: 1, b: { t: "members" } });
      assert.match(String((await peer.next())?.err), /join the cluster first/);
      peer.send({
        k: "req",
        id: 2,
        b: { t: "join", name: "zz", address: "127.0.0.2:1", nonce: "n" },
      });
      assert.match(String((await peer.next())?.err), /the certificate is for b, not zz/);
      assert.ok(m.logs.some((l) => /refused the join of zz .*certificate is for b/.test(l)));
    } finally {
      peer.close();
    }
  } finally {
    await closeAll([b, m]);
    Deno.removeSync(dirB, { recursive: true });
  }
});

Deno.test("RaftCluster with TLS: removing a member revokes its certificate, drops it, and it is told to stop", async () => {
  const dirB = Deno.makeTempDirSync({ prefix: "berth-tls-" });
  const { m, token } = await tlsBootstrap();
  const b = await member("b", "127.0.0.2", {
    join: [m.cluster.address],
    tls: { dir: dirB, joinToken: token },
  });
  try {
    await until("b caught up", () => b.store.members().length === 2);
    const serial = m.store.pki.certsOf("b")[0]!.serial;
    await m.cluster.removePeer("b");
    assert.equal(m.store.pki.revoked(serial), true);
    await until("b learned it was removed", () => b.fatal.length > 0);
    const again = await helloWith(m.cluster.address, dirB, {
      clusterId: "",
      nodeId: 0,
      address: "127.0.0.2:1",
    });
    assert.equal(again?.k, "reject");
    assert.match(String(again?.reason), /revoked/);
  } finally {
    await closeAll([b, m]);
    Deno.removeSync(dirB, { recursive: true });
  }
});

Deno.test("RaftCluster: a data dir of a cluster without TLS is refused with how to migrate, and --tls off on a TLS one", async () => {
  const plainDir = Deno.makeTempDirSync({ prefix: "berth-plain-" });
  const tlsDir = Deno.makeTempDirSync({ prefix: "berth-tls-" });
  try {
    const plain = await member("a", "127.0.0.1", {
      bootstrap: true,
      dataDir: plainDir,
      tls: false,
    });
    await until("bootstrapped", () => plain.store.appliedIndex() > 0);
    await closeAll([plain]);
    await assert.rejects(
      member("a", "127.0.0.1", { dataDir: plainDir, tls: { dir: plainDir } }),
      (e: Error) => {
        assert.match(
          e.message,
          /belongs to a cluster without TLS; TLS cannot be turned on in place/,
        );
        assert.match(
          e.message,
          /berth snapshot save FILE.*--bootstrap.*berth snapshot restore FILE/,
        );
        return true;
      },
    );
    const secure = await member("a", "127.0.0.1", {
      bootstrap: true,
      dataDir: tlsDir,
      tls: { dir: tlsDir },
    });
    await until("the CA applied", () => secure.store.pki.ca() !== undefined);
    assert.equal(Deno.statSync(`${tlsDir}/node.key`).mode! & 0o777, 0o600);
    assert.equal(Deno.statSync(`${tlsDir}/join-token`).mode! & 0o777, 0o600);
    await closeAll([secure]);
    await assert.rejects(
      member("a", "127.0.0.1", { dataDir: tlsDir, tls: false }),
      /belongs to a cluster with TLS; start it without --tls off/,
    );
  } finally {
    Deno.removeSync(plainDir, { recursive: true });
    Deno.removeSync(tlsDir, { recursive: true });
  }
});
