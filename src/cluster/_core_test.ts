import assert from "node:assert/strict";
import { closeAll, member, threeMembers, until } from "../../test/clusters.ts";

Deno.test("ClusterCore logs each new leader once, by name, also right after a bootstrap", async () => {
  const a = await member("a", "127.0.0.1", { bootstrap: true, voters: 1 });
  try {
    await until("a leads", () => a.cluster.status().role === "leader");
    await until("the leader logged", () => a.logs.some((l) => l.startsWith("cluster: leader is")));
    const lines = a.logs.filter((l) => l.startsWith("cluster: leader is"));
    assert.deepEqual(lines, ["cluster: leader is a (id 1)"]);
  } finally {
    await closeAll([a]);
  }
});

Deno.test("ClusterCore: a joiner names the leader it learns of before it has the member table", async () => {
  const ms = await threeMembers();
  try {
    for (const m of ms) {
      const lines = m.logs.filter((l) => l.startsWith("cluster: leader is"));
      assert.ok(lines.length > 0, m.logs.join("\n"));
      for (const l of lines) assert.match(l, /^cluster: leader is [abc] \(id \d+\)$/);
    }
  } finally {
    await closeAll(ms);
  }
});
