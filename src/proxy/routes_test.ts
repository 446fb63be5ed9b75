import assert from "node:assert/strict";
import type { Instance, NodeInfo } from "../store/mod.ts";
import { buildRouteTable, normalizeHost, normalizePrefix } from "./routes.ts";
import { Balancer } from "./balancer.ts";
import { spec } from "./_testing.ts";

function inst(over: Partial<Instance> & { id: string }): Instance {
  return { ...spec({ port: 8000, httpHosts: [], ...over }), createIndex: 1, modifyIndex: 1 };
}

function node(name: string, status: "alive" | "down"): NodeInfo {
  return { name, address: "10.0.0.1", status, meta: {}, createIndex: 1, modifyIndex: 1 };
}

Deno.test("normalizeHost() lower-cases and drops the port and a trailing dot", () => {
  assert.equal(normalizeHost("Web.Example.COM:8080"), "web.example.com");
  assert.equal(normalizeHost("web.example.com."), "web.example.com");
  assert.equal(normalizeHost("web.example.com.:80"), "web.example.com");
  assert.equal(normalizeHost("[::1]:8080"), "[::1]");
  assert.equal(normalizeHost("plain"), "plain");
});

Deno.test("normalizePrefix() adds a leading slash and drops trailing ones", () => {
  assert.equal(normalizePrefix(null), "/");
  assert.equal(normalizePrefix("api/"), "/api");
  assert.equal(normalizePrefix("/"), "/");
});

Deno.test("buildRouteTable() routes by Host, ignoring case and port", () => {
  const t = buildRouteTable([
    inst({ id: "a", httpHosts: ["web.example.com"] }),
    inst({ id: "b", service: "api", httpHosts: ["api.example.com"] }),
  ], []);
  assert.equal(t.match("web.example.com", "/")?.service, "web");
  assert.equal(t.match("WEB.Example.com:8080", "/x?y=1")?.service, "web");
  assert.equal(t.match("api.example.com", "/")?.service, "api");
  assert.equal(t.match("other.example.com", "/"), null);
  assert.equal(t.match(undefined, "/"), null);
});

Deno.test("buildRouteTable() picks the longest matching path prefix on a segment boundary", () => {
  const t = buildRouteTable([
    inst({ id: "a", service: "root", httpHosts: ["h"] }),
    inst({ id: "b", service: "api", httpHosts: ["h"], httpPath: "/api" }),
    inst({ id: "c", service: "v2", httpHosts: ["h"], httpPath: "/api/v2/" }),
  ], []);
  assert.equal(t.match("h", "/")?.service, "root");
  assert.equal(t.match("h", "/api")?.service, "api");
  assert.equal(t.match("h", "/api?x=1")?.service, "api");
  assert.equal(t.match("h", "/api/v1/users")?.service, "api");
  assert.equal(t.match("h", "/api/v2/users")?.service, "v2");
  assert.equal(t.match("h", "/api/v2")?.service, "v2");
  assert.equal(t.match("h", "/apix")?.service, "root");
});

Deno.test("buildRouteTable() serves a path-only route on any host, after host routes", () => {
  const t = buildRouteTable([
    inst({ id: "a", service: "static", httpPath: "/static" }),
    inst({ id: "b", service: "web", httpHosts: ["web.example.com"] }),
  ], []);
  assert.equal(t.match("anything.example.org", "/static/app.js")?.service, "static");
  assert.equal(t.match(undefined, "/static")?.service, "static");
  assert.equal(t.match("anything.example.org", "/other"), null);
  // The host's own "/" route is more specific than a path-only route.
  assert.equal(t.match("web.example.com", "/static/app.js")?.service, "web");
});

Deno.test("buildRouteTable() adds SERVICE.<edgeDomain>, explicit routes win over it", () => {
  const t = buildRouteTable(
    [
      inst({ id: "a", service: "Web" }),
      inst({ id: "b", service: "api", httpHosts: ["web.edge.test"] }),
      inst({ id: "c", service: "db", tcpPort: 5432 }),
    ],
    [],
    { edgeDomain: "edge.test." },
  );
  assert.equal(t.match("api.edge.test", "/")?.service, "api");
  assert.equal(t.match("web.edge.test", "/")?.service, "api");
  assert.equal(t.match("db.edge.test", "/")?.service, "db");
  assert.equal(t.tcp.get(5432)?.service, "db");
  assert.equal(buildRouteTable([inst({ id: "a" })], []).match("web.edge.test", "/"), null);
});

Deno.test("buildRouteTable() keeps a route with no served instance (503) and skips down nodes", () => {
  const t = buildRouteTable([
    inst({ id: "a", httpHosts: ["web"], checkResult: { status: "critical", output: "" } }),
    inst({ id: "b", httpHosts: ["web"], checkResult: { status: "warning", output: "" } }),
    inst({ id: "c", httpHosts: ["web"], node: "n2" }),
    inst({ id: "d", httpHosts: ["web"], node: "n3" }),
    inst({ id: "e", httpHosts: ["web"], weight: 0 }),
  ], [node("n2", "down"), node("n3", "alive")]);
  const r = t.match("web", "/");
  assert.ok(r !== null);
  assert.deepEqual(r.targets.map((x) => x.id), ["d"]);

  const none = buildRouteTable([
    inst({ id: "a", httpHosts: ["web"], checkResult: { status: "critical", output: "" } }),
  ], []);
  assert.deepEqual(none.match("web", "/")?.targets, []);
  assert.equal(none.match("web", "/")?.balancer.pick(), null);
});

Deno.test("buildRouteTable() lists clashing routes and picks the first service by name", () => {
  const t = buildRouteTable([
    inst({ id: "a", service: "zeta", httpHosts: ["h"] }),
    inst({ id: "b", service: "alpha", httpHosts: ["h"] }),
  ], []);
  assert.equal(t.match("h", "/")?.service, "alpha");
  assert.equal(t.conflicts.length, 1);
  assert.match(t.conflicts[0]!, /alpha, zeta/);
});

Deno.test("Balancer round robin spreads by weight and carries over a rebuild", () => {
  const rows = [
    inst({ id: "a", httpHosts: ["h"], weight: 5 }),
    inst({ id: "b", httpHosts: ["h"], weight: 1 }),
    inst({ id: "c", httpHosts: ["h"], weight: 1 }),
  ];
  const t = buildRouteTable(rows, []);
  const b = t.match("h", "/")!.balancer;
  const seq = Array.from({ length: 7 }, () => b.pick()!.id).join("");
  assert.equal(seq, "aabacaa"); // nginx's smooth sequence: no burst of b or c
  const counts: Record<string, number> = {};
  for (let i = 0; i < 700; i++) {
    const id = b.pick()!.id;
    counts[id] = (counts[id] ?? 0) + 1;
  }
  assert.deepEqual(counts, { a: 500, b: 100, c: 100 });

  const eq = buildRouteTable([
    inst({ id: "a", httpHosts: ["h"] }),
    inst({ id: "b", httpHosts: ["h"] }),
  ], []);
  assert.equal(eq.match("h", "/")!.balancer.pick()!.id, "a");
  const eq2 = buildRouteTable(
    [inst({ id: "a", httpHosts: ["h"] }), inst({ id: "b", httpHosts: ["h"] })],
    [],
    { previous: eq },
  );
  // The rotation continues where the old table left off.
  assert.equal(eq2.match("h", "/")!.balancer.pick()!.id, "b");
});

Deno.test("Balancer.pick() skips excluded targets and returns null when all are", () => {
  const t = buildRouteTable([
    inst({ id: "a", httpHosts: ["h"] }),
    inst({ id: "b", httpHosts: ["h"] }),
  ], []);
  const b = t.match("h", "/")!.balancer;
  for (let i = 0; i < 4; i++) assert.equal(b.pick((x) => x.id === "a")!.id, "b");
  assert.equal(b.pick(() => true), null);
});

Deno.test("Balancer least_conn and p2c prefer the less loaded target", () => {
  const load = new Map([["a|127.0.0.1|8000", 5], ["b|127.0.0.1|8000", 1]]);
  for (const lb of ["least_conn", "p2c"]) {
    const t = buildRouteTable(
      [
        inst({ id: "a", httpHosts: ["h"], meta: { "berth.lb": lb } }),
        inst({ id: "b", httpHosts: ["h"] }),
      ],
      [],
      { load: (k) => load.get(k) ?? 0 },
    );
    const b = t.match("h", "/")!.balancer;
    assert.equal(b.policy, lb);
    for (let i = 0; i < 5; i++) assert.equal(b.pick()!.id, "b", lb);
  }
  const bad = buildRouteTable([inst({ id: "a", httpHosts: ["h"], meta: { "berth.lb": "x" } })], []);
  assert.equal(bad.match("h", "/")!.balancer.policy, "round_robin");
  assert.match(bad.conflicts[0]!, /berth\.lb="x" is unknown/);
});

Deno.test("buildRouteTable() reads berth.http.proto into the route; default http1; unknown noted", () => {
  const t = buildRouteTable([
    inst({ id: "a", service: "rpc", httpHosts: ["rpc"], meta: { "berth.http.proto": "grpc" } }),
    inst({ id: "b", service: "rpc", httpHosts: ["rpc"] }),
    inst({ id: "c", service: "h2", httpHosts: ["h2"], meta: { "berth.http.proto": "h2c" } }),
    inst({ id: "d", service: "web", httpHosts: ["web"] }),
    inst({ id: "e", service: "odd", httpHosts: ["odd"], meta: { "berth.http.proto": "spdy" } }),
  ], []);
  assert.equal(t.match("rpc", "/")!.proto, "grpc");
  assert.equal(t.match("h2", "/")!.proto, "h2c");
  assert.equal(t.match("web", "/")!.proto, "http1");
  assert.equal(t.match("odd", "/")!.proto, "http1");
  assert.deepEqual(t.httpRoutes().map((r) => [r.host, r.proto]), [
    ["h2", "h2c"],
    ["odd", "http1"],
    ["rpc", "grpc"],
    ["web", "http1"],
  ]);
  assert.deepEqual(t.conflicts, [
    'service odd: berth.http.proto="spdy" is unknown (use http1, h2c or grpc); using http1',
  ]);
});

Deno.test("buildRouteTable() reads berth.http.redirect and berth.http.hsts into the service's route", () => {
  const t = buildRouteTable([
    inst({ id: "a", httpHosts: ["web.test"] }),
    inst({
      id: "b",
      httpHosts: ["web.test"],
      meta: { "berth.http.redirect": "https", "berth.http.hsts": "max-age=60" },
    }),
    inst({ id: "c", service: "api", httpHosts: ["api.test"] }),
  ], []);
  const web = t.services.get("web")!;
  assert.equal(web.redirectHttps, true);
  assert.equal(web.hsts, "max-age=60");
  const api = t.services.get("api")!;
  assert.equal(api.redirectHttps, false);
  assert.equal(api.hsts, null);
});

Deno.test("Balancer carries each remaining target's rotation state over when targets leave and join", () => {
  const t = (id: string, weight: number) => ({ id, address: "a", port: 1, weight, key: id });
  const before = new Balancer("round_robin", [t("a", 5), t("b", 1), t("c", 1)]);
  assert.equal([0, 1, 2].map(() => before.pick()!.id).join(""), "aab");
  // b left, d joined: a and c keep their state (a 1, c 3), d starts at 0.
  const after = new Balancer("round_robin", [t("a", 5), t("c", 1), t("d", 0.5)], {
    previous: before,
  });
  assert.equal([0, 1, 2].map(() => after.pick()!.id).join(""), "aca");
  const fresh = new Balancer("round_robin", [t("a", 5), t("c", 1), t("d", 0.5)]);
  assert.equal([0, 1, 2].map(() => fresh.pick()!.id).join(""), "aac");
});

Deno.test("buildRouteTable() keeps instances tagged udp out of the HTTP and TCP targets; they are the UDP targets", () => {
  const t = buildRouteTable(
    [
      inst({ id: "n:mix:80", service: "mix", httpHosts: ["mix.test"], tcpPort: 9000 }),
      // A UDP port of the same container: even with a host and TCP port in its row, no claim.
      inst({
        id: "n:mix:80:udp",
        service: "mix",
        httpHosts: ["udp-only.test"],
        tcpPort: 9001,
        tags: ["udp"],
        meta: { "berth.udp.port": "5353" },
      }),
    ],
    [],
    { edgeDomain: "edge.test" },
  );
  const route = t.match("mix.test", "/")!;
  assert.deepEqual(route.targets.map((x) => x.id), ["n:mix:80"]);
  assert.deepEqual(route.udpTargets.map((x) => x.id), ["n:mix:80:udp"]);
  assert.deepEqual(route.balancer.targets.map((x) => x.id), ["n:mix:80"]);
  assert.equal(t.match("mix.edge.test", "/"), route);
  assert.equal(t.match("udp-only.test", "/"), null);
  assert.deepEqual([...t.tcp.keys()], [9000]);
  assert.deepEqual(t.tcp.get(9000)!.route.targets.map((x) => x.id), ["n:mix:80"]);
  assert.deepEqual([...t.udp.keys()], [5353]);
});

Deno.test("buildRouteTable() gives a service of udp instances only no edge route, until a TCP instance joins", () => {
  const udp = inst({
    id: "n:dns:53:udp",
    service: "dns",
    tags: ["udp"],
    meta: { "berth.udp.port": "5353" },
  });
  const t = buildRouteTable([udp], [], { edgeDomain: "edge.test" });
  assert.equal(t.match("dns.edge.test", "/"), null);
  assert.deepEqual(t.httpRoutes(), []);
  assert.deepEqual([...t.hosts()], []);
  assert.equal(t.services.get("dns")?.udpTargets.length, 1); // routed: its UDP route
  // A UDP instance without berth.udp.port routes nothing: not even a listed service.
  const bare = buildRouteTable([inst({ id: "n:x:53:udp", service: "x", tags: ["udp"] })], [], {
    edgeDomain: "edge.test",
  });
  assert.equal(bare.services.has("x"), false);

  const tcp = inst({ id: "n:dns:53", service: "dns" });
  t.apply([{ id: tcp.id, before: null, after: tcp }], []);
  assert.deepEqual(t.match("dns.edge.test", "/")?.targets.map((x) => x.id), ["n:dns:53"]);
  t.apply([{ id: tcp.id, before: tcp, after: null }], []);
  assert.equal(t.match("dns.edge.test", "/"), null);
  assert.deepEqual([...t.hosts()], []);
  t.apply([{ id: udp.id, before: udp, after: null }], []);
  assert.equal(t.services.has("dns"), false);
});
