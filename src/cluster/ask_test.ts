import assert from "node:assert/strict";
import { closeAll, member, rawPeer, threeMembers } from "../../test/clusters.ts";

Deno.test("RaftCluster.ask() reaches another member's query handler over mutual TLS, time-bounded", async () => {
  const ms = await threeMembers();
  try {
    const [a, b, c] = ms as [typeof ms[0], typeof ms[0], typeof ms[0]];
    b.cluster.answerQueries((q) => Promise.resolve({ from: "b", q }));
    c.cluster.answerQueries(() => new Promise(() => {}));
    assert.deepEqual(await a.cluster.ask("b", { q: "x" }, 2_000), { from: "b", q: { q: "x" } });
    await assert.rejects(a.cluster.ask("c", { q: "x" }, 50), /no answer within 50 ms/);
    await assert.rejects(a.cluster.ask("zz", { q: "x" }, 50), /zz is not a cluster member/);
    await assert.rejects(a.cluster.ask("a", { q: "x" }, 50), /a is this member/);
    b.cluster.answerQueries(() => Promise.reject(new Error("malformed container query")));
    await assert.rejects(a.cluster.ask("b", { q: "x" }, 2_000), /malformed container query/);
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster: a query from a node that is not a member is refused", async () => {
  // Plain TCP: a bare Transport claims an id the cluster never handed out.
  const a = await member("a", "127.0.0.1", { bootstrap: true, tls: false });
  const rogue = await rawPeer("127.0.0.9", {
    clusterId: a.cluster.identity()!.clusterId,
    nodeId: 99,
  });
  try {
    a.cluster.answerQueries(() => Promise.resolve({ secret: true }));
    await assert.rejects(
      rogue.request(a.cluster.address, { t: "query", q: { q: "x" } }, { timeoutMs: 2_000 }),
      /queries are answered for members only/,
    );
    await assert.rejects(
      rogue.request(a.cluster.address, { t: "query", q: 5 }, { timeoutMs: 2_000 }),
      /malformed query request/,
    );
  } finally {
    await rogue.close();
    await closeAll([a]);
  }
});
