import assert from "node:assert/strict";
import type { NodeInfo } from "../store/mod.ts";
import { EDGE_CONTACT_MAX_MS, silentEdgeMember } from "./edge_contact.ts";

function node(name: string, over: Partial<NodeInfo> = {}): NodeInfo {
  return {
    name,
    address: "127.0.0.1",
    status: "alive",
    meta: { proxy: "true" },
    createIndex: 1,
    modifyIndex: 1,
    ...over,
  };
}

Deno.test("silentEdgeMember() names an alive proxy member the leader has not heard from lately", () => {
  const nodes = [node("m1"), node("m2"), node("m3")];
  const heard = (m2: number | null) => [
    { name: "m1", lastContactMs: 0 },
    { name: "m2", lastContactMs: m2 },
    { name: "m3", lastContactMs: 150 },
  ];
  assert.equal(silentEdgeMember(nodes, heard(200)), null);
  assert.equal(silentEdgeMember(nodes, heard(EDGE_CONTACT_MAX_MS)), null);
  assert.equal(silentEdgeMember(nodes, heard(7400)), "m2 was last heard 7s ago");
  assert.equal(silentEdgeMember(nodes, heard(null)), "m2 was never heard from");
});

Deno.test("silentEdgeMember() ignores members out of the edge answers: down, no proxy, no member", () => {
  const members = [{ name: "m1", lastContactMs: 0 }, { name: "m2", lastContactMs: 60_000 }];
  assert.equal(silentEdgeMember([node("m1"), node("m2", { status: "down" })], members), null);
  assert.equal(
    silentEdgeMember([node("m1"), node("m2", { meta: { proxy: "false" } })], members),
    null,
  );
  assert.equal(silentEdgeMember([node("m1"), node("external")], members), null);
});
