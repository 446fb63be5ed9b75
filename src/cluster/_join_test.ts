import assert from "node:assert/strict";
import type { Store } from "../store/mod.ts";
import { RejectedError } from "./errors.ts";
import { closeAll, member, type TestMember, until } from "../../test/clusters.ts";

/** Records whether `name` was ever a member of `store` without a catalog node. */
function watchNodeFirst(store: Store, name: string): () => boolean {
  let bad = false;
  const stop = store.subscribe(() => {
    if (store.members().some((m) => m.name === name) && store.node(name) === undefined) bad = true;
  });
  return () => {
    stop();
    return bad;
  };
}

Deno.test("Join.bootstrap() with nodeMeta commits the node record with the first member", async () => {
  const a = await member("a", "127.0.0.1", { bootstrap: true, nodeMeta: { proxy: "true" } });
  try {
    await until("a applied its bootstrap", () => a.store.members().length === 1);
    // Index 1 adds the member, index 2 registers its node: both applied in the first batch.
    const node = a.store.node("a")!;
    assert.equal(node.address, "127.0.0.1");
    assert.equal(node.status, "alive");
    assert.deepEqual(node.meta, { proxy: "true" });
    assert.equal(node.createIndex, 2);
  } finally {
    await closeAll([a]);
  }
});

Deno.test("Join: a joiner's node record is committed before the conf change that adds it", async () => {
  const a = await member("a", "127.0.0.1", { bootstrap: true, nodeMeta: {} });
  const done = watchNodeFirst(a.store, "b");
  const ms: TestMember[] = [a];
  try {
    const b = await member("b", "127.0.0.2", { join: [a.cluster.address], nodeMeta: { v: "1" } });
    ms.push(b);
    await until("b is a member", () => a.store.members().some((m) => m.name === "b"));
    assert.equal(done(), false, "b was listed before its node");
    assert.equal(a.store.node("b")?.address, "127.0.0.2");
    assert.deepEqual(a.store.node("b")?.meta, { v: "1" });
  } finally {
    await closeAll(ms);
  }
});

Deno.test("RaftCluster.join() refuses at once a name another member has", async () => {
  const a = await member("a", "127.0.0.1", { bootstrap: true });
  const twin = await member("a", "127.0.0.2");
  try {
    await until("a leads", () => a.cluster.status().role === "leader");
    await assert.rejects(twin.cluster.join([a.cluster.address]), (e: Error) => {
      assert.ok(e instanceof RejectedError, `${e.name}: ${e.message}`);
      assert.match(e.message, /a member named a already exists/);
      return true;
    });
    assert.equal(twin.cluster.status().role, "standalone");
  } finally {
    await closeAll([a, twin]);
  }
});

Deno.test("RaftCluster.join() through a node that is not in a cluster is refused at once", async () => {
  const lone = await member("x", "127.0.0.1");
  const y = await member("y", "127.0.0.2");
  try {
    await assert.rejects(y.cluster.join([lone.cluster.address]), (e: Error) => {
      // Not retried for JOIN_TIMEOUT_MS: asking again cannot help.
      assert.ok(e instanceof RejectedError, `${e.name}: ${e.message}`);
      assert.match(
        e.message,
        /^cannot join through 127\.0\.0\.1:\d+: this member is not in a cluster$/,
      );
      return true;
    });
  } finally {
    await closeAll([lone, y]);
  }
});
