import assert from "node:assert/strict";
import { Store } from "./mod.ts";

Deno.test("Store.apply() conf records membership; member ids only grow", () => {
  const s = Store.open(":memory:");
  s.apply(1, {
    type: "conf",
    voters: [1],
    learners: [],
    upsert: { id: 1, name: "a", address: "127.0.0.1:8300" },
  });
  s.apply(2, {
    type: "conf",
    voters: [1],
    learners: [2],
    upsert: { id: 2, name: "b", address: "127.0.0.2:8300" },
  });
  assert.deepEqual(s.confState(), { voters: [1], learners: [2] });
  assert.deepEqual(s.members().map((m) => [m.id, m.name, m.role]), [[1, "a", "voter"], [
    2,
    "b",
    "learner",
  ]]);
  s.apply(3, { type: "conf", voters: [1], learners: [], remove: 2 });
  assert.deepEqual(s.members().map((m) => m.name), ["a"]);
  assert.equal(s.memberIdMax(), 2);
  const bad = s.apply(4, { type: "conf", voters: [0], learners: [] });
  assert.match(bad.error ?? "", /voters\[0\]/);
});

Deno.test("Store.formerMembers() names removed members until the name is a member again", () => {
  const s = Store.open(":memory:");
  s.apply(1, {
    type: "conf",
    voters: [1],
    learners: [],
    upsert: { id: 1, name: "a", address: "127.0.0.1:8300" },
  });
  s.apply(2, {
    type: "conf",
    voters: [1],
    learners: [2],
    upsert: { id: 2, name: "b", address: "127.0.0.1:8300" },
  });
  assert.deepEqual(s.formerMembers(), []);
  s.apply(3, { type: "conf", voters: [1], learners: [], remove: 2 });
  assert.deepEqual(s.formerMembers(), ["b"]);
  // b joins again under a new id: no longer a former member.
  s.apply(4, {
    type: "conf",
    voters: [1],
    learners: [3],
    upsert: { id: 3, name: "b", address: "127.0.0.1:8300" },
  });
  assert.deepEqual(s.formerMembers(), []);
  assert.deepEqual(s.members().map((m) => [m.id, m.name]), [[1, "a"], [3, "b"]]);
  s.close();
});
