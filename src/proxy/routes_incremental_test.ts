import assert from "node:assert/strict";
import fc from "fast-check";
import type { Instance, InstanceDelta, NodeDelta, NodeInfo } from "../store/mod.ts";
import { Store } from "../store/mod.ts";
import { applyAll, catalogCommands } from "../store/_catalog_arbitrary.ts";
import { buildRouteTable, type RoutedService, RouteTable } from "./routes.ts";
import { RouteFeed } from "./route_feed.ts";
import { describeTable, instanceArb, type RowOp, rowOpArb } from "./_route_testing.ts";
import { spec } from "./_testing.ts";
import { TEST_ROUTE_INDEX } from "../../test/route_key_fixtures.ts";

/** Route settings the random rows set (`berth.test.*`), so tables choose and note them. */
const routeKeys = TEST_ROUTE_INDEX;

/** Rows as a store keeps them, and the deltas of each batch of writes. */
class Rows {
  readonly instances = new Map<string, Instance>();
  readonly nodes = new Map<string, NodeInfo>();

  /** Applies `ops`; the deltas name each row once, `before` as it was before the batch. */
  batch(ops: readonly RowOp[]): { instances: InstanceDelta[]; nodes: NodeDelta[] } {
    const iBefore = new Map<string, Instance | null>();
    const nBefore = new Map<string, NodeInfo | null>();
    for (const op of ops) {
      if ("put" in op || "deleteInstance" in op) {
        const id = "put" in op ? op.put.id : op.deleteInstance;
        if (!iBefore.has(id)) iBefore.set(id, this.instances.get(id) ?? null);
        if ("put" in op) this.instances.set(id, op.put);
        else this.instances.delete(id);
      } else {
        const name = "putNode" in op ? op.putNode.name : op.deleteNode;
        if (!nBefore.has(name)) nBefore.set(name, this.nodes.get(name) ?? null);
        if ("putNode" in op) this.nodes.set(name, op.putNode);
        else this.nodes.delete(name);
      }
    }
    return {
      instances: [...iBefore].map(([id, before]) => ({
        id,
        before,
        after: this.instances.get(id) ?? null,
      })).filter((d) => d.before !== null || d.after !== null),
      nodes: [...nBefore].map(([name, before]) => ({
        name,
        before,
        after: this.nodes.get(name) ?? null,
      })).filter((d) => d.before !== null || d.after !== null),
    };
  }

  /** Rows in id order, as `store.instances()` gives them. */
  build(edgeDomain: string | null): RouteTable {
    const rows = [...this.instances.values()].sort((a, b) => a.id < b.id ? -1 : 1);
    return buildRouteTable(rows, [...this.nodes.values()], { edgeDomain, routeKeys });
  }
}

Deno.test("RouteTable.apply() after random row batches answers as a table built from the rows", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(null, "edge.test"),
      fc.array(fc.array(rowOpArb, { minLength: 1, maxLength: 4 }), { maxLength: 25 }),
      (edgeDomain, batches) => {
        const rows = new Rows();
        const table = new RouteTable({ edgeDomain, routeKeys });
        for (const b of batches) {
          const d = rows.batch(b);
          table.apply(d.instances, d.nodes);
          assert.deepEqual(describeTable(table), describeTable(rows.build(edgeDomain)));
          // Replaying deltas the table already reflects changes nothing.
          const again = table.apply(d.instances, d.nodes);
          assert.deepEqual(again, {
            tcpPorts: [],
            udpPorts: [],
            gone: [],
            back: [],
            conflicts: [],
          });
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("RouteTable.apply() reports the TCP and UDP ports, target keys and conflict lines it changed", () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(rowOpArb, { minLength: 1, maxLength: 4 }), { maxLength: 20 }),
      (batches) => {
        const rows = new Rows();
        const table = new RouteTable();
        let ports = new Map<number, RoutedService>();
        let udpPorts = new Map<number, RoutedService>();
        let live = new Set<string>();
        let conflicts = new Set<string>();
        for (const b of batches) {
          const d = rows.batch(b);
          const out = table.apply(d.instances, d.nodes);
          // Exactly the ports whose listener must change: opened, closed or handed over.
          const nowPorts = new Map(table.tcp);
          const changed = [...new Set([...ports.keys(), ...nowPorts.keys()])]
            .filter((p) => ports.get(p) !== nowPorts.get(p));
          assert.deepEqual(out.tcpPorts.sort(), changed.sort());
          const nowUdp = new Map(table.udp);
          const udpChanged = [...new Set([...udpPorts.keys(), ...nowUdp.keys()])]
            .filter((p) => udpPorts.get(p) !== nowUdp.get(p));
          assert.deepEqual(out.udpPorts.sort(), udpChanged.sort());
          udpPorts = nowUdp;
          const nowLive = table.liveKeys();
          assert.deepEqual(out.gone.sort(), [...live].filter((k) => !nowLive.has(k)).sort());
          assert.deepEqual(out.back.sort(), [...nowLive].filter((k) => !live.has(k)).sort());
          const nowConflicts = new Set(table.conflicts);
          assert.deepEqual(
            out.conflicts.sort(),
            [...nowConflicts].filter((l) => !conflicts.has(l)).sort(),
          );
          ports = nowPorts;
          live = nowLive;
          conflicts = nowConflicts;
        }
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("RouteTable.apply() gives a new ServiceRoute after a change; the old one keeps its targets", () => {
  const table = new RouteTable();
  const row = (id: string, weight = 1): Instance => ({
    ...spec({ id, port: 80, weight }),
    createIndex: 1,
    modifyIndex: 1,
  });
  table.apply([{ id: "a", before: null, after: row("a") }], []);
  const before = table.match("web.test", "/")!;
  assert.equal(table.match("web.test", "/"), before, "no change: the same route");
  table.apply([{ id: "b", before: null, after: row("b") }], []);
  const after = table.match("web.test", "/")!;
  assert.notEqual(after, before);
  assert.deepEqual(before.targets.map((t) => t.id), ["a"]);
  assert.deepEqual(after.targets.map((t) => t.id), ["a", "b"]);
  // A change of what routes do not use (a check's output) makes no new route.
  const a = row("a");
  table.apply([{
    id: "a",
    before: a,
    after: { ...a, checkResult: { status: "passing", output: "x" } },
  }], []);
  assert.equal(table.match("web.test", "/"), after);
});

Deno.test("RouteTable.apply() carries the round-robin position over a change of the service", () => {
  const table = new RouteTable();
  const row = (id: string): Instance => ({
    ...spec({ id, port: 80 }),
    createIndex: 1,
    modifyIndex: 1,
  });
  table.apply(["a", "b", "c"].map((id) => ({ id, before: null, after: row(id) })), []);
  assert.equal(table.match("web.test", "/")!.balancer.pick()!.id, "a");
  table.apply([{ id: "d", before: null, after: row("d") }], []);
  assert.equal(table.match("web.test", "/")!.balancer.pick()!.id, "b");
});

Deno.test("RouteTable drops the specs and options no member holds any more", () => {
  fc.assert(
    fc.property(fc.array(instanceArb, { maxLength: 12 }), (rows) => {
      const table = new RouteTable({ edgeDomain: "edge.test", routeKeys });
      table.apply(rows.map((after) => ({ id: after.id, before: null, after })), []);
      const ids = [...new Set(rows.map((r) => r.id))];
      table.apply(ids.map((id) => ({ id, before: null, after: null })), []);
      assert.deepEqual(describeTable(table), describeTable(RouteTable.empty()));
      assert.equal(table.sharedCount, 0);
    }),
  );
});

Deno.test("RouteTable kept by a Store's change feed equals one built from the store, after random catalog commands", () => {
  fc.assert(
    // Long sequences: node status flips need a node registered first.
    fc.property(
      fc.constantFrom(null, "edge.test"),
      catalogCommands({ minLength: 30 }),
      (edgeDomain, cmds) => {
        const store = Store.open(":memory:");
        try {
          const table = new RouteTable({ edgeDomain });
          store.subscribe((c) => {
            assert.ok(!c.reset, "no reset from catalog commands");
            table.apply(c.instances, c.nodes);
          });
          for (const cmd of cmds) {
            applyAll(store, [cmd]);
            const built = buildRouteTable(store.instances(), store.nodes(), { edgeDomain });
            assert.deepEqual(describeTable(table), describeTable(built), JSON.stringify(cmd));
          }
        } finally {
          store.close();
        }
      },
    ),
    { numRuns: 100 },
  );
});

Deno.test("RouteFeed over a Store: a paged build while commands apply, then deltas, equals a fresh build", async () => {
  await fc.assert(
    fc.asyncProperty(catalogCommands(), catalogCommands(), async (first, then) => {
      const store = Store.open(":memory:");
      const feed = new RouteFeed({
        source: store,
        edgeDomain: "edge.test",
        sliceSize: 2,
        targetsChanged: () => {},
        targetsReset: () => {},
        tcpChanged: () => {},
        log: () => {},
      });
      try {
        applyAll(store, first);
        feed.start();
        applyAll(store, then.slice(0, 3)); // while the build reads its pages
        await feed.settled();
        applyAll(store, then.slice(3));
        const built = buildRouteTable(store.instances(), store.nodes(), {
          edgeDomain: "edge.test",
        });
        assert.deepEqual(describeTable(feed.table), describeTable(built));
      } finally {
        feed.close();
        store.close();
      }
    }),
    { numRuns: 60 },
  );
});
