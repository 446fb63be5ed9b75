/**
 * Helpers for the route table's incremental tests: what a table answers, as plain data to
 * compare (`describeTable`), and random instance and node rows (`rowsArb`) on a few services,
 * nodes, hosts, paths and TCP ports so that routes clash often.
 *
 * @module
 */
import fc from "fast-check";
import type { Instance, NodeInfo } from "../store/mod.ts";
import { registeredCheck } from "../../test/fixtures.ts";
import { spec } from "./_testing.ts";
import type { RouteTable } from "./routes.ts";

export const HOSTS = ["a.test", "B.test:80", "web.edge.test", "api.edge.test"];
const PATHS = [null, "/", "/api", "api/", "/api/v2", "/static"];
const URLS = ["/", "/api", "/api/x", "/apix", "/api/v2/y", "/static/a.js", "/other?q"];
const LOOKUP_HOSTS = [undefined, "a.test", "b.test", "web.edge.test", "api.edge.test", "x.test"];

/** Everything a table answers: lookups, routes, services' targets and options, TCP, conflicts. */
export function describeTable(t: RouteTable): unknown {
  const services = [...t.services.keys()].sort().map((name) => {
    const r = t.services.get(name)!;
    return {
      name,
      targets: r.targets.map((x) => `${x.key}*${x.weight}`),
      udpTargets: r.udpTargets.map((x) => `${x.key}*${x.weight}`),
      policy: r.balancer.policy,
      proto: r.proto,
      redirect: r.redirectHttps,
      hsts: r.hsts,
      acme: r.acme,
      settings: [...r.settings.values],
    };
  });
  return {
    lookups: LOOKUP_HOSTS.flatMap((h) => URLS.map((u) => `${h} ${u} ${t.match(h, u)?.service}`)),
    routes: t.httpRoutes(),
    services,
    tcp: [...t.tcp].map(([port, s]) => [port, s.service]).sort((a, b) => +a[0]! - +b[0]!),
    tcpClashes: [...t.tcpClashes],
    udp: [...t.udp].map(([port, s]) => [port, s.service]).sort((a, b) => +a[0]! - +b[0]!),
    udpClashes: [...t.udpClashes],
    conflicts: [...t.conflicts].sort(),
    hosts: [...t.hosts()].sort(),
    acmeHosts: [...t.acmeHosts].sort(),
    live: [...t.liveKeys()].sort(),
  };
}

const metaArb: fc.Arbitrary<Record<string, string>> = fc.record({
  "berth.lb": fc.constantFrom("round_robin", "least_conn", "p2c", "bogus"),
  "berth.http.proto": fc.constantFrom("http1", "h2c", "grpc", "spdy"),
  "berth.http.hsts": fc.constantFrom("max-age=60", "max-age=1"),
  "berth.http.redirect": fc.constantFrom("https", "off"),
  "berth.tls": fc.constantFrom("acme", "manual"),
  "berth.udp.port": fc.constantFrom("5353", "5354", "bad"),
  // Route settings of TEST_ROUTE_INDEX (test/route_key_fixtures.ts): tables given it as routeKeys.
  "berth.test.n": fc.constantFrom("1", "2"),
  "berth.test.h.A": fc.constantFrom("a"),
}, { requiredKeys: [] });

/** A random instance row with id `i<0..7>`. */
export const instanceArb: fc.Arbitrary<Instance> = fc.record({
  id: fc.constantFrom("i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7"),
  service: fc.constantFrom("web", "api", "Web", "db"),
  node: fc.constantFrom("n1", "n2", "n3"),
  address: fc.constantFrom("10.0.0.1", "10.0.0.2"),
  port: fc.constantFrom(80, 8080),
  weight: fc.constantFrom(0, 1, 3),
  httpHosts: fc.subarray(HOSTS, { maxLength: 2 }),
  httpPath: fc.constantFrom(...PATHS),
  tcpPort: fc.constantFrom(null, null, 9000, 9001),
  tags: fc.constantFrom<string[]>([], ["udp"]),
  meta: metaArb,
  checkResult: fc.constantFrom(
    null,
    { status: "passing" as const, output: "ok" },
    { status: "passing" as const, output: "still ok" },
    { status: "critical" as const, output: "down" },
  ),
}).map((r) => ({ ...spec(r), createIndex: 1, modifyIndex: 1 }));

/** A random node row of `n1`–`n3`: alive, down, or alive with a failing node-level check. */
export const nodeArb: fc.Arbitrary<NodeInfo> = fc.record({
  name: fc.constantFrom("n1", "n2", "n3"),
  status: fc.constantFrom("alive" as const, "down" as const),
  failing: fc.boolean(),
}).map(({ name, status, failing }) => ({
  name,
  address: "10.0.0.9",
  status,
  meta: {},
  ...(failing ? { checks: [registeredCheck("serf", { status: "critical" })] } : {}),
  createIndex: 1,
  modifyIndex: 1,
}));

/** One write to the rows: put or delete an instance or a node. */
export type RowOp =
  | { put: Instance }
  | { deleteInstance: string }
  | { putNode: NodeInfo }
  | { deleteNode: string };

export const rowOpArb: fc.Arbitrary<RowOp> = fc.oneof(
  { weight: 6, arbitrary: instanceArb.map((put) => ({ put })) },
  {
    weight: 2,
    arbitrary: fc.constantFrom("i0", "i1", "i2", "i3").map((deleteInstance) => ({
      deleteInstance,
    })),
  },
  { weight: 2, arbitrary: nodeArb.map((putNode) => ({ putNode })) },
  { weight: 1, arbitrary: fc.constantFrom("n1", "n2").map((deleteNode) => ({ deleteNode })) },
);
