import assert from "node:assert/strict";
import { closeAll, member, type TestMember, until } from "../../test/clusters.ts";

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
