import assert from "node:assert/strict";
import { Store } from "../store/mod.ts";
import { MemberView } from "./_member_view.ts";

Deno.test("MemberView follows the applied membership: members, learners, removed ids, addresses", () => {
  const store = Store.open(":memory:");
  try {
    const v = new MemberView(store);
    assert.equal(v.isMember(1), false);
    assert.equal(v.wasRemoved(1), false);
    const upsert = (id: number, name: string) => ({ id, name, address: `127.0.0.${id}:8300` });
    store.applyMany([
      { index: 1, command: { type: "conf", voters: [1], learners: [], upsert: upsert(1, "a") } },
      { index: 2, command: { type: "conf", voters: [1], learners: [2], upsert: upsert(2, "b") } },
    ]);
    assert.equal(v.isMember(2), true);
    assert.equal(v.isLearner(2), true);
    assert.equal(v.addresses.get(2), "127.0.0.2:8300");
    assert.equal(v.name(2), "b");
    // An id not handed out yet (a joiner this replica has not caught up with) is not "removed".
    assert.equal(v.wasRemoved(3), false);
    store.applyMany([{
      index: 3,
      command: { type: "conf", voters: [1], learners: [], remove: 2 },
    }]);
    assert.equal(v.isMember(2), false);
    assert.equal(v.wasRemoved(2), true);
    assert.equal(v.wasRemoved(0), false);
    assert.equal(v.name(9), "id 9");
  } finally {
    store.close();
  }
});
