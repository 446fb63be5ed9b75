import assert from "node:assert/strict";
import type { Instance } from "../store/mod.ts";
import { instanceSpec } from "../../test/fixtures.ts";
import { buildRouteTable, RouteTable } from "../proxy/routes.ts";
import { acmeNames, acmeNamesOf, isOrderableName, type NamesSource } from "./names.ts";

function inst(over: Partial<Instance> & { id: string }): Instance {
  return { ...instanceSpec({ meta: {}, ...over }), createIndex: 1, modifyIndex: 1 };
}
const ACME = { "berth.tls": "acme" };

Deno.test("isOrderableName() takes DNS names of two labels or more, nothing else", () => {
  for (const ok of ["web.example.com", "a.b", "x-1.edge.test", `${"a".repeat(63)}.com`]) {
    assert.ok(isOrderableName(ok), ok);
  }
  for (
    const bad of [
      "",
      "localhost",
      "*.example.com",
      "web_1.example.com",
      "-a.example.com",
      "a-.example.com",
      "a..b",
      "Web.Example.com",
      "10.0.0.1",
      "[::1]",
      `${"a".repeat(64)}.com`,
      `${"a.".repeat(127)}com`,
    ]
  ) {
    assert.ok(!isOrderableName(bad), bad);
  }
});

Deno.test("acmeNames() orders the hosts and the edge name of services that ask, sorted", () => {
  const names = acmeNames(
    [
      inst({ id: "a", service: "web", httpHosts: ["www.example.com", "example.com"], meta: ACME }),
      inst({ id: "b", service: "api", httpHosts: ["api.example.com"] }),
      inst({ id: "c", service: "shop", meta: ACME }),
    ],
    [],
    { edgeDomain: "edge.test." },
  );
  assert.deepEqual(names, [
    "example.com",
    "shop.edge.test",
    "web.edge.test",
    "www.example.com",
  ]);
});

Deno.test("acmeNames() with all orders every routed host; never a wildcard, IP or bad name", () => {
  const instances = [
    inst({ id: "a", service: "web", httpHosts: ["*.example.com", "web.example.com"] }),
    inst({ id: "b", service: "api", httpHosts: ["10.0.0.1", "under_score.test", "single"] }),
    inst({ id: "c", service: "tcp", tcpPort: 5432 }),
    inst({ id: "d", service: "static", httpPath: "/static" }),
  ];
  assert.deepEqual(acmeNames(instances, [], { all: true }), ["web.example.com"]);
  assert.deepEqual(acmeNames(instances, []), []);
});

Deno.test("acmeNames() with domains orders only those names and the names under them (--acme-domains)", () => {
  const instances = [
    inst({
      id: "a",
      service: "web",
      httpHosts: ["example.com", "www.example.com", "badexample.com", "example.com.evil.test"],
      meta: ACME,
    }),
    inst({ id: "b", service: "shop", meta: ACME }),
  ];
  const opts = { edgeDomain: "edge.test", domains: ["example.com"] };
  assert.deepEqual(acmeNames(instances, [], opts), ["example.com", "www.example.com"]);
  assert.deepEqual(
    acmeNames(instances, [], { ...opts, domains: ["example.com", "edge.test"] }),
    ["example.com", "shop.edge.test", "web.edge.test", "www.example.com"],
  );
  assert.equal(acmeNames(instances, [], { ...opts, domains: [] }).length, 6, "none: any name");
});

Deno.test("acmeNames() a host won by a service that does not ask is ordered only if another route on it asks", () => {
  const claimed = [
    inst({ id: "a", service: "a", httpHosts: ["h.test"] }),
    inst({ id: "b", service: "b", httpHosts: ["h.test"], meta: ACME }),
  ];
  // Both claim h.test at `/`: "a" serves it (name order), and "a" does not ask.
  assert.deepEqual(acmeNames(claimed, []), []);
  const paths = [
    inst({ id: "a", service: "a", httpHosts: ["h.test"] }),
    inst({ id: "b", service: "b", httpHosts: ["h.test"], httpPath: "/api", meta: ACME }),
  ];
  assert.deepEqual(acmeNames(paths, []), ["h.test"]);
});

Deno.test("acmeNames() one instance saying berth.tls=acme is enough for its service", () => {
  const names = acmeNames([
    inst({ id: "a1", service: "web", httpHosts: ["web.test"] }),
    inst({ id: "a2", service: "web", httpHosts: ["web.test"], meta: ACME }),
  ], []);
  assert.deepEqual(names, ["web.test"]);
});

/** A small seeded generator (mulberry32), so a failing case can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("acmeNames() property: every name is routed by a service that asks, orderable; every unshared asking host is named", () => {
  const HOSTS = [
    "a.test",
    "b.test",
    "*.w.test",
    "c.example.com",
    "x_y.test",
    "plain",
    "127.0.0.1",
    "d.test",
  ];
  const SERVICES = ["s1", "s2", "s3", "s4"];
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(seed);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
    const edge = r() < 0.5 ? "edge.test" : null;
    const all = r() < 0.2;
    const instances: Instance[] = [];
    const count = 1 + Math.floor(r() * 6);
    for (let i = 0; i < count; i++) {
      const hosts = HOSTS.filter(() => r() < 0.25);
      instances.push(inst({
        id: `i${i}`,
        service: pick(SERVICES),
        httpHosts: hosts,
        httpPath: r() < 0.3 ? "/p" : null,
        meta: r() < 0.5 ? ACME : {},
      }));
    }
    const names = acmeNames(instances, [], { edgeDomain: edge, all });
    const where = `seed ${seed}`;
    assert.deepEqual(names, [...new Set(names)].sort(), where);
    const hostsOf = (i: Instance) => [
      ...i.httpHosts,
      ...(edge === null ? [] : [`${i.service}.${edge}`]),
    ];
    for (const n of names) {
      assert.ok(isOrderableName(n), `${where}: ${n} not orderable`);
      const routers = instances.filter((i) => hostsOf(i).includes(n));
      assert.ok(routers.length > 0, `${where}: ${n} is routed by no service`);
      if (!all) {
        assert.ok(
          routers.some((i) =>
            instances.some((j) => j.service === i.service && j.meta["berth.tls"])
          ),
          `${where}: ${n} is routed by no service that asks`,
        );
      }
    }
    // Completeness: a host of an asking service that no other service claims is named.
    for (const i of instances) {
      const asks = all || instances.some((j) => j.service === i.service && j.meta["berth.tls"]);
      if (!asks) continue;
      for (const h of hostsOf(i)) {
        const shared = instances.some((j) => j.service !== i.service && hostsOf(j).includes(h));
        if (!shared && isOrderableName(h)) assert.ok(names.includes(h), `${where}: ${h} missing`);
      }
    }
  }
});

Deno.test("acmeNamesOf() follows its route table's deltas; recomputes only when its hosts changed", () => {
  const table = new RouteTable({ edgeDomain: "edge.test" });
  const put = (i: Instance) => table.apply([{ id: i.id, before: null, after: i }], []);
  const source = {
    hosts: () => table.hosts(),
    get acmeHosts() {
      reads++;
      return table.acmeHosts;
    },
    get hostsVersion() {
      return table.hostsVersion;
    },
  };
  let reads = 0;
  const names = acmeNamesOf(() => source);
  assert.deepEqual(names(), []);
  put(inst({ id: "a", service: "web", httpHosts: ["web.test"], meta: ACME }));
  assert.deepEqual(names(), ["web.edge.test", "web.test"]);
  assert.equal(reads, 2);
  // Another instance of the service, same hosts: the names are not computed again.
  put(inst({ id: "b", service: "web", httpHosts: ["web.test"], meta: ACME }));
  assert.deepEqual(names(), ["web.edge.test", "web.test"]);
  assert.equal(reads, 2);
  // The only instance asking for ACME goes: its service's hosts are no longer ordered.
  put(inst({ id: "a", service: "web", httpHosts: ["web.test"] }));
  put(inst({ id: "b", service: "web", httpHosts: ["web.test"] }));
  assert.deepEqual(names(), []);
  assert.deepEqual(acmeNamesOf(() => source, { all: true })(), ["web.edge.test", "web.test"]);
  // A new table (a full rebuild) is read anew.
  const rebuilt = buildRouteTable([inst({ id: "c", service: "api", meta: ACME })], [], {
    edgeDomain: "edge.test",
  });
  let current: NamesSource = table;
  const follow = acmeNamesOf(() => current);
  assert.deepEqual(follow(), []);
  current = rebuilt;
  assert.deepEqual(follow(), ["api.edge.test"]);
});
