import assert from "node:assert/strict";
import { ChangeFeed, ChangeSet } from "./change_feed.ts";
import type { Change, Instance } from "./types.ts";
import { instanceSpec } from "../../test/fixtures.ts";

function change(index: number): Change {
  return {
    index,
    tables: new Set(["kv"]),
    services: new Set(),
    keys: new Set(["k"]),
    instances: [],
    nodes: [],
    reset: false,
  };
}

Deno.test("ChangeFeed.announce() reaches every subscriber even when one throws", () => {
  const feed = new ChangeFeed();
  const got: number[] = [];
  const logged: string[] = [];
  const error = console.error;
  console.error = (msg: string) => logged.push(msg);
  try {
    feed.subscribe(() => {
      throw new Error("boom");
    });
    feed.subscribe((c) => got.push(c.index));
    feed.announce(change(7));
  } finally {
    console.error = error;
  }
  assert.deepEqual(got, [7]);
  assert.deepEqual(logged, ["store: change subscriber failed: Error: boom"]);
});

Deno.test("ChangeFeed.subscribe() returns an unsubscribe; clear() drops everyone", () => {
  const feed = new ChangeFeed();
  const a: number[] = [];
  const b: number[] = [];
  const stopA = feed.subscribe((c) => a.push(c.index));
  feed.subscribe((c) => b.push(c.index));
  feed.announce(change(1));
  stopA();
  feed.announce(change(2));
  feed.clear();
  feed.announce(change(3));
  assert.deepEqual(a, [1]);
  assert.deepEqual(b, [1, 2]);
});

Deno.test("ChangeSet.merge() adds the other set's tables, services and keys", () => {
  const outer = new ChangeSet();
  outer.tables.add("kv");
  outer.keys.add("a");
  const inner = new ChangeSet();
  inner.tables.add("instances");
  inner.services.add("web");
  inner.keys.add("b");
  outer.merge(inner);
  assert.deepEqual([...outer.tables], ["kv", "instances"]);
  assert.deepEqual([...outer.services], ["web"]);
  assert.deepEqual([...outer.keys], ["a", "b"]);
});

Deno.test("ChangeSet.merge() keeps the outer set's before and takes the inner's after", () => {
  const row = (modifyIndex: number): Instance => ({
    ...instanceSpec({ id: "a" }),
    createIndex: 1,
    modifyIndex,
  });
  const outer = new ChangeSet();
  outer.instance("a", row(1), row(2));
  const inner = new ChangeSet();
  inner.instance("a", row(2), row(3));
  inner.instance("b", null, { ...row(3), id: "b" });
  inner.instance("b", { ...row(3), id: "b" }, null); // added and removed again: no delta
  outer.merge(inner);
  assert.deepEqual(outer.instanceDeltas(), [{ id: "a", before: row(1), after: row(3) }]);
  assert.equal(outer.toChange(3).reset, false);
});
