import assert from "node:assert/strict";
import { closeAll, leaderOf, threeMembers, until } from "./_testing.ts";

Deno.test("Liveness: the leader marks a silent member's node down and registers it if missing", async () => {
  const ms = await threeMembers({ nodeTimeoutMs: 300 });
  try {
    const leader = await leaderOf(ms);
    const gone = ms.find((m) => m !== leader)!;
    await gone.cluster.close();
    await until("gone marked down", () => leader.store.node(gone.name)?.status === "down");
    assert.ok(
      leader.logs.some((l) => l.startsWith(`cluster: no contact with ${gone.name} for `)),
      leader.logs.join("\n"),
    );
    // Registered from the member table: its cluster address without the port.
    assert.equal(leader.store.node(gone.name)?.address, gone.cluster.address.replace(/:\d+$/, ""));
  } finally {
    await closeAll(ms);
  }
});
