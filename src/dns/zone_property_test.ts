/**
 * The zone kept current by the change feed's deltas answers exactly like a zone built afresh
 * from the store, after random catalog command sequences (src/store/_catalog_arbitrary.ts), with
 * and without an ACL filter; both hold what a direct reading of the store says they should; and
 * a replica fed structured clones of the deltas (what a worker thread would get) holds the same;
 * the DnsServer's cached answers, asked between commands, never go stale.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { applyAll, catalogCommands } from "../store/_catalog_arbitrary.ts";
import { type Change, type Command, instanceHealth, Store } from "../store/mod.ts";
import { decode, query } from "./_testing.ts";
import { type Reply, resolve } from "./resolve.ts";
import { DnsServer } from "./server.ts";
import { encodeReply, errorResponse, writeResponse } from "./reply.ts";
import { parseQuery, type Query, RCODE, TYPE } from "./wire.ts";
import { canonicalIp } from "./ip_hex.ts";
import { Zone, type ZoneFilter, type ZoneOptions } from "./zone.ts";
import { zoneDelta } from "./zone_delta.ts";
import { type ZoneSource, ZoneView } from "./zone_view.ts";

const OPTIONS: Omit<ZoneOptions, "visible"> = {
  domain: "berth.",
  edgeDomain: "edge.example.",
  ttl: 5,
  serviceTtl: new Map([["web", 30]]),
};

/** Hides service `db` and node `n3` (as `--dns-acl` with such a policy would). */
const FILTER: ZoneFilter = {
  service: (name) => name !== "db",
  node: (name) => name !== "n3",
};

/**
 * The arbitrary's commands with more variety mixed in by `seeds`: proxy members (edge names),
 * service names and tags in upper case, IPv6 and hostname addresses.
 */
function varied(cmds: Command[], seeds: number[]): Command[] {
  let n = 0;
  const vary = (c: Command): Command => {
    const seed = seeds[n++ % seeds.length]!;
    switch (c.type) {
      case "batch":
        return { ...c, commands: c.commands.map(vary) };
      case "node.register":
        return seed % 2 === 0 ? { ...c, meta: { ...c.meta, proxy: "true" } } : c;
      case "register": {
        const i = { ...c.instance };
        if (seed % 5 === 0) i.service = i.service.toUpperCase();
        if (seed % 4 === 0) i.tags = i.tags.map((t) => t.toUpperCase());
        if (seed % 7 === 0) i.address = "fd00::1";
        if (seed % 11 === 0) i.address = "db.internal";
        return { ...c, instance: i };
      }
      default:
        return c;
    }
  };
  return [...NODES, ...cmds.map(vary)];
}

/** Every sequence starts with the nodes registered, so status flips and node checks apply. */
const NODES: Command[] = [
  { type: "node.register", name: "n1", address: "10.0.0.1", meta: { proxy: "true" } },
  { type: "node.register", name: "n2", address: "192.168.1.2", meta: {} },
  { type: "node.register", name: "n3", address: "fd00::3", meta: { proxy: "true" } },
];

const SERVICES = ["web", "api", "db", "grpc-svc", "WEB", "nope"];
const ADDRESSES = [
  "10.0.0.1",
  "10.0.0.2",
  "10.0.0.3",
  "127.0.0.1",
  "fd00::1",
  "fd00::3",
  "192.168.1.2",
  "10.9.9.9",
];

/** Questions covering every handler: service forms, nodes, apex, edge, addr, PTR, NXDOMAIN. */
const QUESTIONS: { name: string; type: number }[] = [
  ...SERVICES.flatMap((s) => [
    { name: `${s}.service.berth.`, type: TYPE.A },
    { name: `${s}.service.dc1.berth.`, type: TYPE.AAAA },
    { name: `${s}.service.berth.`, type: TYPE.SRV },
    { name: `${s}.service.berth.`, type: TYPE.ANY },
    { name: `v1.${s}.service.berth.`, type: TYPE.A },
    { name: `primary.v1.${s}.service.dc1.berth.`, type: TYPE.SRV },
    { name: `_${s}._tcp.service.berth.`, type: TYPE.SRV },
    { name: `_${s}._canary.service.berth.`, type: TYPE.SRV },
  ]),
  ...["n1", "n2", "n3", "N1", "n9"].flatMap((n) => [
    { name: `${n}.node.berth.`, type: TYPE.A },
    { name: `${n}.node.dc1.berth.`, type: TYPE.TXT },
  ]),
  { name: "berth.", type: TYPE.SOA },
  { name: "berth.", type: TYPE.NS },
  { name: "berth.", type: TYPE.ANY },
  { name: "x.edge.example.", type: TYPE.A },
  { name: "edge.example.", type: TYPE.AAAA },
  { name: "0a000001.addr.berth.", type: TYPE.A },
  { name: "service.berth.", type: TYPE.A },
  { name: "nothing.berth.", type: TYPE.A },
  ...ADDRESSES.map((a) => ({ name: ptrName(a), type: TYPE.PTR })),
];

function ptrName(address: string): string {
  if (!address.includes(":")) return `${address.split(".").reverse().join(".")}.in-addr.arpa.`;
  const hex = canonicalIp(address)!.split(":").map((g) => g.padStart(4, "0")).join("");
  return `${[...hex].reverse().join(".")}.ip6.arpa.`;
}

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

/** What the store says the zone holds, read directly (the rule zone.ts documents). */
function expected(store: Store, filter: ZoneFilter | undefined) {
  const seen = (i: { service: string; node: string }) =>
    filter === undefined || (filter.service(i.service) && filter.node(i.node));
  const nodes = store.nodes().filter((n) => filter === undefined || filter.node(n.name));
  const services = new Map<string, unknown[]>();
  for (const i of store.instances()) {
    if (!seen(i) || !instanceHealth(i, nodes.find((n) => n.name === i.node)).served) continue;
    const key = i.service.toLowerCase();
    const tags = [...new Set(i.tags.map((t) => t.toLowerCase()))].sort();
    services.set(key, [
      ...services.get(key) ?? [],
      { address: i.address, port: i.port, weight: i.weight, tags },
    ]);
  }
  const alive = store.nodes().filter((n) => n.status === "alive");
  return {
    services: [...services].sort(([a], [b]) => a < b ? -1 : 1),
    nameServers: alive.filter((n) => nodes.some((v) => v.name === n.name)).map((n) =>
      n.name.toLowerCase()
    ),
    edgeAddresses: alive.filter((n) => n.meta.proxy === "true").map((n) => n.address),
  };
}

function servedOf(z: Zone) {
  return {
    services: z.serviceNames().map((s) => [
      s,
      z.instances(s).map(({ address, port, weight, tags }) => ({ address, port, weight, tags })),
    ]),
    nameServers: z.nameServers,
    edgeAddresses: z.edgeAddresses,
  };
}

/** A reply's records as sorted text (answer order is shuffled or rotated per query). */
function records(r: Reply | null) {
  if (r === null) return null;
  const text = (rrs: { type: string; ttl?: number; data: unknown }[]) =>
    rrs.map((x) => `${x.type} ${x.ttl} ${JSON.stringify(x.data)}`).sort();
  return { rcode: r.rcode, answers: text(r.answers), authority: text(r.authority) };
}

Deno.test("Zone kept by deltas answers like a zone rebuilt from the store (random commands)", async () => {
  await fc.assert(
    fc.asyncProperty(
      catalogCommands({ minLength: 15, maxLength: 60 }),
      fc.array(fc.nat(1000), { minLength: 1, maxLength: 20 }),
      fc.boolean(),
      async (cmds, seeds, acl) => {
        const store = Store.open(":memory:");
        const filter = acl ? FILTER : undefined;
        const view = new ZoneView({
          store,
          zone: OPTIONS,
          visible: filter === undefined ? undefined : () => filter,
        });
        try {
          await view.start();
          const zone = view.zone;
          // A replica fed only structured clones of the deltas, as a DNS worker would be.
          const replica = new Zone({ instances: [], nodes: [], version: 0 }, OPTIONS);
          const off = store.subscribe((c) => replica.apply(structuredClone(zoneDelta(c, filter))));
          applyAll(store, varied(cmds, seeds));
          off();
          assert.equal(view.zone, zone, "a delta rebuilt the zone");
          assert.deepEqual(contents(replica), contents(zone));
          const fresh = new Zone(
            { instances: store.instances(), nodes: store.nodes(), version: store.appliedIndex() },
            { ...OPTIONS, visible: filter },
          );
          assert.deepEqual(contents(zone), contents(fresh));
          assert.deepEqual(servedOf(zone), expected(store, filter));
          for (const q of QUESTIONS) {
            assert.deepEqual(records(resolve(zone, q)), records(resolve(fresh, q)), q.name);
          }
        } finally {
          view.close();
          store.close();
        }
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("ZoneView rebuilt in slices amid random commands ends like a zone rebuilt at once", async () => {
  await fc.assert(
    fc.asyncProperty(
      catalogCommands({ minLength: 15, maxLength: 60 }),
      fc.array(fc.nat(1000), { minLength: 1, maxLength: 20 }),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }),
      fc.nat(),
      async (cmds, seeds, yields, resetAt) => {
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
        const view = new ZoneView({ store: source, zone: OPTIONS, sliceInstances: 2 });
        try {
          await view.start();
          const all = varied(cmds, seeds);
          for (let k = 0; k < all.length; k++) {
            if (k === resetAt % all.length) {
              // A reset as a snapshot install announces it (the state itself is unchanged).
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
            applyAll(store, [all[k]!]);
            if (yields[k % yields.length]) await new Promise((r) => setTimeout(r, 0));
          }
          for (let i = 0; i < 1000 && view.rebuilding; i++) {
            await new Promise((r) => setTimeout(r, 0));
          }
          assert.ok(!view.rebuilding, "the rebuild did not finish");
          const fresh = new Zone(
            { instances: store.instances(), nodes: store.nodes(), version: store.appliedIndex() },
            OPTIONS,
          );
          assert.deepEqual(contents(view.zone), contents(fresh));
        } finally {
          view.close();
          store.close();
        }
      },
    ),
    { numRuns: 100 },
  );
});

/** Filters an ACL change may switch between, keyed as `--dns-acl`'s are. */
const KEYED: readonly ZoneFilter[] = [
  { service: () => true, node: () => true, key: "open" },
  { ...FILTER, key: "no db, no n3" },
  { service: (name) => name !== "web", node: (name) => name !== "n1", key: "no web, no n1" },
];

Deno.test("ZoneView whose filter changes amid random commands and ACL writes ends like a zone built at once with the last filter", async () => {
  await fc.assert(
    fc.asyncProperty(
      catalogCommands({ minLength: 15, maxLength: 60 }),
      fc.array(fc.nat(1000), { minLength: 1, maxLength: 20 }),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 20 }),
      // Per command: an ACL write before it (null: none) with the filter it leaves in force.
      fc.array(fc.option(fc.nat(KEYED.length - 1), { freq: 2 }), { minLength: 1, maxLength: 30 }),
      async (cmds, seeds, yields, acl) => {
        const store = Store.open(":memory:");
        let filter = KEYED[0]!;
        const view = new ZoneView({
          store,
          zone: OPTIONS,
          sliceInstances: 2,
          visible: () => filter,
        });
        try {
          await view.start();
          const all = varied(cmds, seeds);
          for (let k = 0; k < all.length; k++) {
            const f = acl[k % acl.length];
            if (f !== null && f !== undefined) {
              filter = KEYED[f]!;
              applyAll(store, [{
                type: "acl.policy.set",
                policy: {
                  id: "11111111-1111-4111-8111-111111111111",
                  name: "dns",
                  description: String(k),
                  rules: "",
                  datacenters: [],
                },
              }]);
            }
            applyAll(store, [all[k]!]);
            if (yields[k % yields.length]) await new Promise((r) => setTimeout(r, 0));
          }
          for (let i = 0; i < 1000 && view.rebuilding; i++) {
            await new Promise((r) => setTimeout(r, 0));
          }
          assert.ok(!view.rebuilding, "the rebuild did not finish");
          const fresh = new Zone(
            { instances: store.instances(), nodes: store.nodes(), version: store.appliedIndex() },
            { ...OPTIONS, visible: filter },
          );
          assert.deepEqual(contents(view.zone), contents(fresh));
        } finally {
          view.close();
          store.close();
        }
      },
    ),
    { numRuns: 100 },
  );
});

/** A response decoded into sorted record texts, SOA serials left out (cached ones may lag). */
function responseRecords(bytes: Uint8Array) {
  const m = decode(bytes);
  const text = (rrs: { type: string; ttl?: number; data?: unknown }[]) =>
    rrs.map((x) => {
      const data = x.type === "SOA" ? { ...(x.data as object), serial: 0 } : x.data;
      return `${x.type} ${x.ttl} ${JSON.stringify(data)}`;
    }).sort();
  return {
    rcode: m.rcode,
    answers: text(m.answers),
    authority: text(m.authorities),
    additionals: text(m.additionals),
  };
}

/** The response a fresh zone's reply makes to `q` (REFUSED when it is not the zone's). */
function freshResponse(zone: Zone, bytes: Uint8Array): Uint8Array {
  const q = parseQuery(bytes) as Query;
  const reply = resolve(zone, q);
  const opts = { recursion: false };
  if (reply === null) return errorResponse(q, RCODE.REFUSED, opts);
  return writeResponse(q, encodeReply(reply), { ...opts, limitBytes: 65_535, random: Math.random });
}

const TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(TYPE).map(([name, n]) => [n, name]),
);

Deno.test("DnsServer's cached answers follow every change (random commands, asked between them)", async () => {
  await fc.assert(
    fc.asyncProperty(
      catalogCommands({ minLength: 10, maxLength: 30 }),
      fc.array(fc.nat(1000), { minLength: 1, maxLength: 20 }),
      async (cmds, seeds) => {
        const store = Store.open(":memory:");
        const server = new DnsServer({
          ...OPTIONS,
          store,
          listen: { host: "127.0.0.1", port: 0 },
          recursors: [],
        });
        try {
          await server.start();
          const asked = QUESTIONS.map((q) => ({ q, bytes: query(q.name, TYPE_NAMES[q.type]!) }));
          for (const c of varied(cmds, seeds)) {
            applyAll(store, [c]);
            const fresh = new Zone(
              { instances: store.instances(), nodes: store.nodes(), version: 0 },
              OPTIONS,
            );
            for (const { q, bytes } of asked) {
              const got = server.answer(bytes, true);
              assert.ok(got !== null && !(got instanceof Promise), `${q.name}: no answer`);
              assert.deepEqual(
                responseRecords(got),
                responseRecords(freshResponse(fresh, bytes)),
                `${q.name} ${TYPE_NAMES[q.type]} after ${c.type}`,
              );
            }
          }
        } finally {
          await server.close();
          store.close();
        }
      },
    ),
    { numRuns: 25 },
  );
});
