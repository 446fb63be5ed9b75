import assert from "node:assert/strict";
import fc from "fast-check";
import { type Change, Store } from "../../store/mod.ts";
import { applyAll, catalogCommands } from "../../store/_catalog_arbitrary.ts";
import { buildRouteTable } from "../routes.ts";
import { RouteFeed } from "../route_feed.ts";
import { describeTable } from "../_route_testing.ts";
import { RouteReplica, RouteSender } from "./route_replica.ts";
import type { RoutesMessage } from "./protocol.ts";

const byName = <T extends { name: string }>(rows: T[]) =>
  [...rows].sort((a, b) => a.name < b.name ? -1 : 1);

/** A worker's RouteFeed over a replica (small pages, so builds are paged). */
function feedOver(replica: RouteReplica): RouteFeed {
  return new RouteFeed({
    source: replica,
    edgeDomain: "edge.test",
    sliceSize: 2,
    targetsChanged: () => {},
    targetsReset: () => {},
    tcpChanged: () => {},
    log: () => {},
  });
}

/** Whether the replica and a feed over it show what the store holds. */
function assertSameView(store: Store, replica: RouteReplica, feed: RouteFeed): void {
  assert.deepEqual(replica.instances(), store.instances());
  assert.deepEqual(byName(replica.nodes()), byName(store.nodes()));
  const built = buildRouteTable(store.instances(), store.nodes(), { edgeDomain: "edge.test" });
  assert.deepEqual(describeTable(feed.table), describeTable(built));
}

Deno.test("RouteReplica fed by RouteSender's messages equals the store after random catalog commands", async () => {
  await fc.assert(
    fc.asyncProperty(catalogCommands(), catalogCommands(), async (first, then) => {
      const store = Store.open(":memory:");
      const sender = new RouteSender(store);
      const replica = new RouteReplica();
      const feed = feedOver(replica);
      // Messages cross the thread boundary by structured clone.
      const send = (m: RoutesMessage) => assert.equal(replica.receive(structuredClone(m)), null);
      let started = false; // the main thread follows the feed from the start; a worker joins
      const unsubscribe = store.subscribe((c) => {
        const m = sender.onChange(c);
        if (m !== null && started) send(m);
      });
      try {
        applyAll(store, first);
        send(sender.full()); // a worker starting now
        started = true;
        feed.start();
        applyAll(store, then.slice(0, 3)); // while the feed's build reads its pages
        await feed.settled();
        assertSameView(store, replica, feed);
        for (const cmd of then.slice(3)) {
          applyAll(store, [cmd]);
          assertSameView(store, replica, feed);
        }
      } finally {
        unsubscribe();
        feed.close();
        store.close();
      }
    }),
    { numRuns: 80 },
  );
});

Deno.test("RouteReplica.receive() asks for a full table after a missed delta, and catches up on it", async () => {
  await fc.assert(
    fc.asyncProperty(catalogCommands({ minLength: 5 }), fc.nat(), async (cmds, k) => {
      const store = Store.open(":memory:");
      const sender = new RouteSender(store);
      const replica = new RouteReplica();
      const feed = feedOver(replica);
      replica.receive(sender.full());
      feed.start();
      const deltas: RoutesMessage[] = [];
      const unsubscribe = store.subscribe((c) => {
        const m = sender.onChange(c);
        if (m !== null) deltas.push(m);
      });
      try {
        applyAll(store, cmds);
        if (deltas.length < 2) return;
        const lost = k % (deltas.length - 1); // not the last: a later one shows the gap
        const answers = deltas.filter((_, i) => i !== lost).map((m) => replica.receive(m));
        assert.ok(answers.includes("resync"));
        assert.equal(answers.filter((a) => a === "resync").length, 1, "asked once");
        replica.receive(sender.full());
        await feed.settled();
        assertSameView(store, replica, feed);
      } finally {
        unsubscribe();
        feed.close();
        store.close();
      }
    }),
    { numRuns: 60 },
  );
});

Deno.test("RouteSender.onChange() sends a full table after a reset, nothing for other tables", () => {
  const store = Store.open(":memory:");
  try {
    applyAll(store, [{ type: "node.register", name: "n1", address: "10.0.0.1", meta: {} }]);
    const sender = new RouteSender(store);
    const base: Change = {
      index: store.appliedIndex(),
      tables: new Set(["kv"]),
      services: new Set(),
      keys: new Set(["a"]),
      instances: [],
      nodes: [],
      reset: false,
    };
    assert.equal(sender.onChange(base), null);
    const full = sender.onChange({ ...base, tables: new Set(["instances"]), reset: true });
    assert.equal(full?.type, "routes.full");
    assert.deepEqual(full?.type === "routes.full" && full.nodes, store.nodes());
  } finally {
    store.close();
  }
});

Deno.test("RouteReplica.receive() skips a delta its full table already holds", () => {
  const replica = new RouteReplica();
  const seen: Change[] = [];
  replica.subscribe((c) => seen.push(c));
  assert.equal(
    replica.receive({ type: "routes.delta", from: 0, version: 1, instances: [], nodes: [] }),
    "resync",
    "no full table yet: a gap",
  );
  replica.receive({ type: "routes.full", version: 5, instances: [], nodes: [] });
  assert.equal(
    replica.receive({ type: "routes.delta", from: 3, version: 4, instances: [], nodes: [] }),
    null,
  );
  assert.equal(seen.length, 1, "only the full table's reset");
  assert.equal(replica.version, 5);
});
