/**
 * A worker's replica fed only structured clones of the ZoneFeed's messages holds the main
 * thread's answering zone after random catalog command sequences (src/store/_catalog_arbitrary.ts),
 * with resets (a rebuilt zone takes over) and lost messages (a gap: the replica asks for the
 * whole zone) mixed in, with and without an ACL filter.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { applyAll, catalogCommands } from "../../store/_catalog_arbitrary.ts";
import { type Change, Store } from "../../store/mod.ts";
import { resolve } from "../resolve.ts";
import { TYPE } from "../wire.ts";
import type { Zone, ZoneFilter, ZoneOptions } from "../zone.ts";
import { type ZoneSource, ZoneView } from "../zone_view.ts";
import { ZoneFeed } from "./feed.ts";
import type { DeltaMessage, ZoneMessage } from "./protocol.ts";
import { ZoneReplica } from "./replica.ts";

const OPTIONS: Omit<ZoneOptions, "visible"> = {
  domain: "berth.",
  edgeDomain: "edge.example.",
  ttl: 5,
  serviceTtl: new Map([["web", 30]]),
};

const FILTER: ZoneFilter = { service: (name) => name !== "db", node: (name) => name !== "n3" };

/** A zone's contents through its read API, as plain ordered data. */
function contents(z: Zone) {
  return {
    version: z.version,
    services: z.serviceNames().map((s) => [s, z.instances(s)]),
    nodes: [...z.nodes].sort(([a], [b]) => a < b ? -1 : 1),
    nameServers: z.nameServers,
    edgeAddresses: z.edgeAddresses,
    reverse: z.reverseAddresses().map((a) => [a, z.reverseNames(a)]),
  };
}

type Question = { name: string; type: number };
const QUESTIONS: Question[] = ["web", "api", "db", "grpc-svc"].flatMap((s): Question[] => [
  { name: `${s}.service.berth.`, type: TYPE.A },
  { name: `${s}.service.berth.`, type: TYPE.SRV },
]).concat([
  { name: "n1.node.berth.", type: TYPE.A },
  { name: "berth.", type: TYPE.NS },
  { name: "x.edge.example.", type: TYPE.A },
]);

Deno.test("ZoneReplica fed by ZoneFeed's messages equals the view's zone (random commands, resets, lost messages)", async () => {
  await fc.assert(
    fc.asyncProperty(
      catalogCommands({ minLength: 10, maxLength: 50 }),
      fc.array(fc.nat(99), { minLength: 1, maxLength: 20 }),
      fc.boolean(),
      async (cmds, dice, acl) => {
        const store = Store.open(":memory:");
        let announce: ((c: Change) => void) | null = null;
        const source: ZoneSource = {
          subscribe: (fn) => {
            announce = fn;
            return store.subscribe(fn);
          },
          nodes: () => store.nodes(),
          appliedIndex: () => store.appliedIndex(),
          instancesPage: (after, limit) => store.instancesPage(after, limit),
        };
        const filter = acl ? FILTER : undefined;
        const view = new ZoneView({
          store: source,
          zone: OPTIONS,
          sliceInstances: 3,
          visible: filter === undefined ? undefined : () => filter,
        });
        let resyncs = 0;
        const replica = new ZoneReplica({
          zone: OPTIONS,
          onInvalidate: () => {},
          resync: () => resyncs++,
        });
        let n = 0;
        let lossy = true;
        const feed = new ZoneFeed(view, (m: ZoneMessage | DeltaMessage) => {
          const roll = dice[n++ % dice.length]!;
          if (lossy && roll < 10) return; // lost: the next delta shows a gap
          const clone = structuredClone(m);
          if (clone.type === "zone") replica.setZone(clone.delta);
          else replica.applyDelta(clone.from, clone.delta);
        });
        try {
          await view.start();
          replica.setZone(structuredClone(feed.full()).delta);
          for (let k = 0; k < cmds.length; k++) {
            const roll = dice[k % dice.length]!;
            if (roll >= 90) {
              announce!({
                index: store.appliedIndex(),
                tables: new Set(),
                services: new Set(),
                keys: new Set(),
                instances: [],
                nodes: [],
                reset: true,
              });
            }
            applyAll(store, [cmds[k]!]);
            if (roll % 3 === 0) await new Promise((r) => setTimeout(r, 0));
            if (!replica.ready && resyncs > 0) replica.setZone(structuredClone(feed.full()).delta);
          }
          for (let i = 0; i < 1000 && view.rebuilding; i++) {
            await new Promise((r) => setTimeout(r, 0));
          }
          if (!replica.ready) replica.setZone(structuredClone(feed.full()).delta);
          assert.ok(!view.rebuilding, "the rebuild did not finish");
          // A delta lost at the very end shows no gap until the next one: send one more.
          lossy = false;
          applyAll(store, [{ type: "node.register", name: "zz", address: "10.7.7.7", meta: {} }]);
          if (!replica.ready) replica.setZone(structuredClone(feed.full()).delta);
          assert.deepEqual(contents(replica.zone), contents(view.zone));
          for (const q of QUESTIONS) {
            assert.deepEqual(
              resolve(replica.zone, q)?.answers.length,
              resolve(view.zone, q)?.answers.length,
              q.name,
            );
          }
        } finally {
          feed.close();
          view.close();
          store.close();
        }
      },
    ),
    { numRuns: 100 },
  );
});
