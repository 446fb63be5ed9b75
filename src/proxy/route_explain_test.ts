import assert from "node:assert/strict";
import type { Instance } from "../store/mod.ts";
import { buildRouteTable } from "./routes.ts";
import { explainServiceRoutes, explainUrl, parseTarget, proxyOffUrl } from "./route_explain.ts";
import { spec } from "./_testing.ts";
import { Balancer } from "./balancer.ts";

function inst(over: Partial<Instance> & { id: string }): Instance {
  return { ...spec({ port: 8000, httpHosts: [], ...over }), createIndex: 1, modifyIndex: 1 };
}

Deno.test("explainUrl() names the host route with the longest matching prefix and its members", () => {
  const t = buildRouteTable([
    inst({ id: "a", service: "web", httpHosts: ["web.test"] }),
    inst({ id: "b", service: "api", httpHosts: ["web.test"], httpPath: "/api" }),
    inst({ id: "c", service: "api", httpHosts: ["web.test"], httpPath: "/api", weight: 0 }),
  ], []);
  const e = explainUrl(t, parseTarget("web.test/api/v1"));
  assert.deepEqual(e.matched, { host: "web.test", prefix: "/api", edge: false, service: "api" });
  assert.match(e.reasons[0]!, /host web\.test with the longest matching prefix \/api/);
  assert.deepEqual(e.route?.members.map((m) => [m.instance, m.target, m.why]), [
    ["b", true, null],
    ["c", false, "weight 0"],
  ]);
  assert.equal(explainUrl(t, parseTarget("web.test/apix")).matched?.service, "web");
});

Deno.test("explainUrl() says why nothing matches: unknown host, no prefix, no any-host route", () => {
  const t = buildRouteTable([
    inst({ id: "a", service: "web", httpHosts: ["web.test"], httpPath: "/app" }),
    inst({ id: "b", service: "static", httpPath: "/static" }),
  ], []);
  const other = explainUrl(t, parseTarget("other.test/x"));
  assert.equal(other.matched, null);
  assert.deepEqual(other.reasons, [
    "no route names the host other.test",
    "no path-only route /static is a prefix of /x",
    "the proxy answers 404",
  ]);
  const wrongPath = explainUrl(t, parseTarget("web.test/x"));
  assert.match(wrongPath.reasons[0]!, /host web\.test has routes \/app; none is a prefix of \/x/);
  // The any-host route serves a known host whose own routes do not match.
  const fallback = explainUrl(t, parseTarget("web.test/static/a.js"));
  assert.equal(fallback.matched?.service, "static");
  assert.equal(fallback.matched?.host, null);
});

Deno.test("explainUrl() lists the conflict of a route two services claim, and a 503 without targets", () => {
  const t = buildRouteTable([
    inst({ id: "a", service: "alpha", httpHosts: ["x.test"] }),
    inst({ id: "b", service: "beta", httpHosts: ["x.test"], weight: 0 }),
  ], []);
  const e = explainUrl(t, parseTarget("x.test/"));
  assert.equal(e.matched?.service, "alpha");
  assert.deepEqual(e.conflicts, [
    "route x.test/: claimed by services alpha, beta; alpha serves it",
  ]);
  const lost = explainServiceRoutes(t, "beta")!;
  assert.deepEqual(lost.http, [{ host: "x.test", prefix: "/", edge: false, servedBy: "alpha" }]);
  assert.equal(lost.conflicts.length, 1);
  assert.match(
    explainUrl(
      buildRouteTable([inst({ id: "z", service: "z", httpHosts: ["z.test"], weight: 0 })], []),
      parseTarget("z.test/"),
    )
      .reasons.at(-1)!,
    /z has no target now: the proxy answers 503/,
  );
});

Deno.test("explainServiceRoutes() lists claims, the edge route, TCP ports and their owners", () => {
  const t = buildRouteTable(
    [
      inst({ id: "a", service: "web", httpHosts: ["web.test"], httpPath: "/w", tcpPort: 9000 }),
      inst({ id: "b", service: "aaa", tcpPort: 9000 }),
    ],
    [],
    { edgeDomain: "edge.test" },
  );
  const r = explainServiceRoutes(t, "web")!;
  assert.deepEqual(r.http, [
    { host: "web.edge.test", prefix: "/", edge: true, servedBy: "web" },
    { host: "web.test", prefix: "/w", edge: false, servedBy: "web" },
  ]);
  assert.deepEqual(r.tcp, [{ port: 9000, servedBy: "aaa" }]);
  assert.deepEqual(r.conflicts, ["TCP port 9000: claimed by services aaa and web; aaa keeps it"]);
  assert.equal(explainServiceRoutes(t, "nope"), null);
});

Deno.test("explainUrl() peeks the balancer's next pick without moving it, skipping ejected ones", () => {
  const t = buildRouteTable([
    inst({ id: "a", service: "web", httpHosts: ["w.test"] }),
    inst({ id: "b", service: "web", httpHosts: ["w.test"] }),
  ], []);
  const target = parseTarget("w.test/");
  const first = explainUrl(t, target).pick;
  assert.equal(explainUrl(t, target).pick, first); // a peek does not rotate
  assert.equal(t.match("w.test", "/")!.balancer.pick()?.id, first);
  const other = first === "a" ? "b" : "a";
  assert.equal(explainUrl(t, target).pick, other); // the pick moved the rotation on
  assert.equal(explainUrl(t, target, { ejected: new Set([other]) }).pick, first);
  assert.equal(explainUrl(t, target, { ejected: new Set(["a", "b"]) }).pick, null);
});

Deno.test("explainUrl() hashes a given key the same way every time (berth.lb=hash)", () => {
  const t = buildRouteTable(
    ["a", "b", "c"].map((id) =>
      inst({ id, service: "web", httpHosts: ["w.test"], meta: { "berth.lb": "hash" } })
    ),
    [],
  );
  const target = parseTarget("w.test/");
  const e = explainUrl(t, target, { key: "10.1.2.3" });
  assert.match(e.pickNote, /^hash of the client IP "10\.1\.2\.3"/);
  assert.equal(explainUrl(t, target, { key: "10.1.2.3" }).pick, e.pick);
  assert.equal(t.match("w.test", "/")!.balancer.pick(undefined, "10.1.2.3")?.id, e.pick);
});

Deno.test("explainUrl() has no pick for hash by client IP without a key: it depends on the client", () => {
  const t = buildRouteTable(
    ["a", "b", "c"].map((id) =>
      inst({ id, service: "web", httpHosts: ["w.test"], meta: { "berth.lb": "hash" } })
    ),
    [],
  );
  const e = explainUrl(t, parseTarget("w.test/"));
  assert.equal(e.pick, null);
  assert.equal(
    e.pickNote,
    "hash of the client IP: depends on the client (every request has one); give --key IP",
  );
  // By a header, a request without it goes round robin: that pick is shown.
  const byHeader = buildRouteTable(
    ["a", "b"].map((id) =>
      inst({
        id,
        service: "web",
        httpHosts: ["w.test"],
        meta: { "berth.lb": "hash", "berth.lb.hash": "header:X-User" },
      })
    ),
    [],
  );
  const h = explainUrl(byHeader, parseTarget("w.test/"));
  assert.equal(h.pick, byHeader.match("w.test", "/")!.balancer.peek()?.id);
  assert.match(h.pickNote, /^hash of the header x-user: a request without it gets this one/i);
  const keyed = explainUrl(byHeader, parseTarget("w.test/"), { key: "bob" });
  assert.equal(keyed.pick, byHeader.match("w.test", "/")!.balancer.pick(undefined, "bob")?.id);
});

Deno.test("explainUrl() for sticky_cookie reads --key as the cookie's value, as the proxy does", () => {
  const t = buildRouteTable(
    ["a", "b", "c"].map((id) =>
      inst({ id, service: "web", httpHosts: ["w.test"], meta: { "berth.lb": "sticky_cookie" } })
    ),
    [],
  );
  const target = parseTarget("w.test/");
  const balancer = t.match("w.test", "/")!.balancer;
  for (const want of balancer.targets) {
    const e = explainUrl(t, target, { key: Balancer.token(want) });
    assert.equal(e.pick, want.id);
    assert.equal(e.pickNote, "sticky_cookie: the cookie value names this one");
  }
  // An ejected one, or an unknown value: round robin's pick, as for a request without cookie.
  const a = balancer.targets.find((x) => x.id === "a")!;
  const ej = explainUrl(t, target, { key: Balancer.token(a), ejected: new Set(["a"]) });
  assert.notEqual(ej.pick, "a");
  assert.match(ej.pickNote, /names no target/);
  const fresh = explainUrl(t, target);
  assert.equal(fresh.pick, balancer.peek()?.id);
  assert.match(fresh.pickNote, /^sticky_cookie: a request without the cookie gets this one/);
});

Deno.test("explainUrl() routes the path as the proxy does: normalized, or the 400 it answers", () => {
  const t = buildRouteTable([
    inst({ id: "api", service: "api", httpHosts: ["h.test"], httpPath: "/api" }),
    inst({ id: "admin", service: "admin", httpHosts: ["h.test"], httpPath: "/admin" }),
  ], []);
  assert.equal(explainUrl(t, parseTarget("http://h.test/api/../admin")).matched?.service, "admin");
  assert.equal(explainUrl(t, parseTarget("h.test//%61dmin/x")).matched?.service, "admin");
  const refused = explainUrl(t, parseTarget("h.test/api/%2e%2e/%2e%2e/etc"));
  assert.equal(refused.matched, null);
  assert.match(refused.reasons[0]!, /^the proxy answers 400: /);
});

Deno.test("explainServiceRoutes() lists only the conflict lines that name the service itself", () => {
  const t = buildRouteTable([
    inst({ id: "a", service: "web-api", httpHosts: ["x.test"] }),
    inst({ id: "b", service: "web-app", httpHosts: ["x.test"] }),
    inst({ id: "c", service: "web", httpHosts: ["y.test"] }),
  ], []);
  assert.deepEqual(explainServiceRoutes(t, "web")!.conflicts, []);
  assert.deepEqual(explainServiceRoutes(t, "web-app")!.conflicts, [
    "route x.test/: claimed by services web-api, web-app; web-api serves it",
  ]);
});

Deno.test("explainServiceRoutes() lists UDP ports and their owners; only instances tagged udp claim one", () => {
  const t = buildRouteTable([
    inst({ id: "d:udp", service: "dns", tags: ["udp"], meta: { "berth.udp.port": "5353" } }),
    inst({ id: "t", service: "tcp-only", tcpPort: 9000, meta: { "berth.udp.port": "5354" } }),
    inst({ id: "a:udp", service: "aaa", tags: ["udp"], meta: { "berth.udp.port": "5353" } }),
  ], []);
  const r = explainServiceRoutes(t, "dns")!;
  assert.deepEqual(r.udp, [{ port: 5353, servedBy: "aaa" }]);
  assert.deepEqual(r.conflicts, ["UDP port 5353: claimed by services aaa and dns; aaa keeps it"]);
  assert.deepEqual(explainServiceRoutes(t, "tcp-only")!.udp, []);
  assert.deepEqual([...t.udp.keys()], [5353]);
});

Deno.test("explainServiceRoutes() marks instances tagged udp as targets of the UDP routes only", () => {
  const t = buildRouteTable([
    inst({ id: "n:mix:80", service: "mix", httpHosts: ["mix.test"] }),
    inst({ id: "n:mix:80:udp", service: "mix", tags: ["udp"], meta: { "berth.udp.port": "5353" } }),
  ], []);
  const r = explainServiceRoutes(t, "mix")!;
  assert.deepEqual(r.udp, [{ port: 5353, servedBy: "mix" }]);
  assert.deepEqual(
    r.options.members.map((m) => [m.instance, m.target, m.udp ?? false]),
    [["n:mix:80", true, false], ["n:mix:80:udp", true, true]],
  );
  assert.deepEqual(explainUrl(t, parseTarget("mix.test/")).matched?.service, "mix");
});

Deno.test("proxyOffUrl() keeps the target and says the proxy is off, with no route and no pick", () => {
  const t = parseTarget("web.test/api");
  assert.deepEqual(proxyOffUrl(t), {
    ...t,
    matched: null,
    reasons: ["the proxy is off on this member"],
    conflicts: [],
    route: null,
    pick: null,
    pickNote: "the proxy is off on this member",
  });
});
