import assert from "node:assert/strict";
import type { Store } from "../store/mod.ts";
import { BusyError, RejectedError } from "./errors.ts";
import { closeAll, member, type TestMember, until } from "../../test/clusters.ts";
import { sleep } from "../../test/wait.ts";

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
  // Join mechanics over plain TCP (with TLS, joining starts with enrollment: security_test.ts).
  const a = await member("a", "127.0.0.1", { tls: false, bootstrap: true });
  const twin = await member("a", "127.0.0.2", { tls: false });
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

Deno.test("RaftCluster.join() through a node not in a cluster (yet) moves on to the next address", async () => {
  // Join mechanics over plain TCP (with TLS, joining starts with enrollment: security_test.ts).
  // Every host started with the same --join list: a peer that is itself still joining answers
  // "not in a cluster", which is not final.
  const lone = await member("x", "127.0.0.1", { tls: false });
  const a = await member("a", "127.0.0.2", { tls: false, bootstrap: true });
  const y = await member("y", "127.0.0.3", { tls: false });
  try {
    await until("a leads", () => a.cluster.status().role === "leader");
    await y.cluster.join([lone.cluster.address, a.cluster.address]);
    await until("y is a member", () => a.store.members().some((m) => m.name === "y"));
    assert.ok(
      y.logs.some((l) =>
        /join through 127\.0\.0\.1:\d+ failed \(this member is not in a cluster/.test(l)
      ),
      y.logs.join("\n"),
    );
  } finally {
    await closeAll([lone, a, y]);
  }
});

Deno.test("RaftCluster.join() while a --join is under way is refused at once with BusyError", async () => {
  const a = await member("a", "127.0.0.1", { bootstrap: true });
  // Nobody answers at 127.0.0.9:1: the background join keeps trying.
  const y = await member("y", "127.0.0.2", { join: ["127.0.0.9:1"] });
  try {
    let settled: unknown;
    y.cluster.join([a.cluster.address]).then(() => settled = "joined", (e) => settled = e);
    await until("join answered", () => settled !== undefined);
    assert.ok(settled instanceof BusyError, String(settled));
    assert.match(settled.message, /a join is under way/);
  } finally {
    await closeAll([a, y]);
  }
});

Deno.test("RaftCluster.join() after a refused --join asks its own addresses", async () => {
  // Join mechanics over plain TCP (with TLS, joining starts with enrollment: security_test.ts).
  const a = await member("a", "127.0.0.1", { tls: false, bootstrap: true });
  const other = await member("o", "127.0.0.2", { tls: false, bootstrap: true });
  await until("a leads", () => a.cluster.status().role === "leader");
  // Named like cluster a's member: the background join is refused for good.
  const twin = await member("a", "127.0.0.3", { tls: false, join: [a.cluster.address] });
  try {
    await until("refusal logged", () => twin.logs.some((l) => /a member named a already/.test(l)));
    await until("o leads", () => other.cluster.status().role === "leader");
    await twin.cluster.join([other.cluster.address]);
    assert.equal(twin.cluster.identity()?.clusterId, other.cluster.identity()?.clusterId);
  } finally {
    await closeAll([a, other, twin]);
  }
});

Deno.test("RaftCluster --join to an address nobody answers logs one line per outage, not two", async () => {
  // Join mechanics over plain TCP (with TLS, joining starts with enrollment: security_test.ts).
  // Nobody answers at 127.0.0.9:1: the background join keeps trying (200, 400, 800 ms apart).
  const y = await member("y", "127.0.0.2", { tls: false, join: ["127.0.0.9:1"] });
  try {
    const about = () => y.logs.filter((l) => l.includes("127.0.0.9:1"));
    await until("the unreachable address logged", () => about().length > 0);
    await sleep(1_000); // a few more tries
    assert.equal(about().length, 1, about().join("\n"));
    assert.match(about()[0]!, /^cluster: cannot reach 127\.0\.0\.9:1: .*\(retrying\)$/);
  } finally {
    await closeAll([y]);
  }
});
