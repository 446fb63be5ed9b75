import assert from "node:assert/strict";
import { ChangeFeed, ChangeSet } from "./change_feed.ts";
import type { Change } from "./types.ts";

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
