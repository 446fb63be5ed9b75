import assert from "node:assert/strict";
import { ApiServer } from "../api/mod.ts";
import { LocalCluster } from "../cluster/testing.ts";
import { Store } from "../store/mod.ts";
import { VERSION } from "../version.ts";
import { apiInstanceSpec } from "../../test/fixtures.ts";
import { buildRouteTable } from "../proxy/routes.ts";
import { explainServiceRoutes, explainUrl } from "../proxy/route_explain.ts";
import { main } from "./mod.ts";
import { renderExplain } from "./explain_command.ts";

/** An API over a store with two web instances (one failing its check) and their route table. */
async function withAgent(
  fn: (
    run: (argv: string[]) => Promise<{ code: number; out: string; err: string }>,
  ) => Promise<void>,
) {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" });
  const table = () => buildRouteTable(store.instances(), store.nodes());
  const api = new ApiServer({
    store,
    cluster,
    node: "n1",
    advertise: "127.0.0.1",
    version: VERSION,
    aclDefault: "allow",
    listen: { host: "127.0.0.1", port: 0 },
    routes: () => ({
      listen: "127.0.0.1:80",
      https: null,
      http: [],
      tcp: [],
      udp: [{ port: 5353, service: "dns", state: "listening", error: null, flows: 0, dropped: 0 }],
      conflicts: [],
    }),
    explain: {
      url: (t, ctx) => explainUrl(table(), t, ctx),
      serviceRoutes: (s) => explainServiceRoutes(table(), s),
      container: (q) => ({ error: `no running container named "${q}" on this member` }),
    },
  });
  await api.start();
  await cluster.propose({
    type: "register",
    instance: apiInstanceSpec({ id: "web-1", httpHosts: ["web.test"], httpPath: "/app" }),
  });
  await cluster.propose({
    type: "register",
    instance: apiInstanceSpec({
      id: "web-2",
      address: "10.0.0.2",
      httpHosts: ["web.test"],
      httpPath: "/app",
      checkResult: { status: "critical", output: "HTTP 500 from /health" },
    }),
  });
  await cluster.propose({
    type: "register",
    instance: apiInstanceSpec({
      id: "dns-1",
      service: "dns",
      tags: ["udp"],
      meta: { "berth.udp.port": "5353" },
    }),
  });
  const env = { BERTH_HTTP_ADDR: `http://127.0.0.1:${api.address.port}` };
  try {
    await fn(async (argv) => {
      let out = "";
      let err = "";
      const code = await main(argv, {
        stdout: (c) => out += typeof c === "string" ? c : new TextDecoder().decode(c),
        stderr: (t) => err += t,
        env,
      });
      return { code, out, err };
    });
  } finally {
    await api.close();
    store.close();
  }
}

Deno.test("berth explain SERVICE prints health by source, routes and members", async () => {
  await withAgent(async (run) => {
    const r = await run(["explain", "web"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Service web \(asked on n1\)\n {2}1 of 2 instances pass health\n/);
    assert.match(r.out, /web-2 is critical: HTTP 500 from \/health/);
    assert.doesNotMatch(r.out, /proxy is off/);
    assert.match(r.out, /\nRoutes\n {2}Route +Served by\n {2}web\.test\/app +web\n/);
    assert.match(r.out, /web-2 +10\.0\.0\.2:32768 +n1 +1 +no: its health is not passing/);
    assert.match(r.out, /\nRejected labels\n {2}\(none\)\n/);
    const json = JSON.parse((await run(["explain", "--service", "web", "--json"])).out);
    assert.equal(json.kind, "service");
    assert.equal(json.instances.length, 2);
  });
});

Deno.test("berth explain URL names the route, and exits 1 when no route matches", async () => {
  await withAgent(async (run) => {
    const hit = await run(["explain", "http://web.test/app/x"]);
    assert.equal(hit.code, 0, hit.err);
    assert.match(hit.out, /^URL http:\/\/web\.test\/app\/x → route web\.test\/app of service web/);
    assert.match(hit.out, /\nRules\n {2}the instance gets \/app\/x\n/);
    assert.match(hit.out, /\n {2}pick now: web-1 \(round_robin: the next request/);
    const miss = await run(["explain", "web.test/other"]);
    assert.equal(miss.code, 1);
    assert.match(miss.out, /^URL http:\/\/web\.test\/other: no route/);
    assert.match(miss.out, /the proxy answers 404/);
  });
});

Deno.test("berth explain exits 1 with one line for an unknown container and a bad URL", async () => {
  await withAgent(async (run) => {
    const gone = await run(["explain", "nope"]);
    assert.equal(gone.code, 1);
    assert.equal(
      gone.err,
      'berth explain: the agent answered 404: no service, container or URL named "nope" (no service has ' +
        'that name; a URL holds a /): container "nope": no running container named "nope" on this member\n',
    );
    const bad = await run(["explain", "--url", "ftp://x/y"]);
    assert.equal(bad.code, 1);
    assert.equal(bad.err.trim().split("\n").length, 1);
    assert.match(bad.err, /400: url: ftp: URLs are not proxied/);
    const two = await run(["explain", "--url", "--service", "x"]);
    assert.equal(two.code, 2);
  });
});

Deno.test("berth explain SERVICE lists a UDP route with its listener state", async () => {
  await withAgent(async (run) => {
    const r = await run(["explain", "dns"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /\n {2}udp :5353 +dns \(listening\)\n/);
    assert.match(r.out, /dns-1 .* yes \(UDP routes only\)/);
    assert.doesNotMatch(r.out, /no route/);
    assert.doesNotMatch((await run(["explain", "web"])).out, /udp :/);
  });
});

Deno.test("renderExplain() prints each rejected label's message once, without repeating the label", () => {
  const out = renderExplain({
    kind: "container",
    member: "h1",
    seenAgoMs: 1200,
    name: "web-1",
    id: "0123456789abcdef",
    image: "berth-test",
    state: "running",
    summary: "registered: 1 instance",
    labels: [{ key: "berth.lb", value: "foo", from: "label" }],
    problems: [
      {
        label: "berth.lb",
        message: 'berth.lb="foo": expected round_robin or least_conn; using round_robin',
      },
      {
        label: "berth.htp.host",
        message: "berth.htp.host: not a berth label (see the README's label table); ignored",
      },
    ],
    ports: [],
    instances: [],
  });
  assert.match(
    out,
    /\nRejected labels\n {2}berth\.lb="foo": expected round_robin or least_conn; using round_robin\n {2}berth\.htp\.host: not a berth label/,
  );
  assert.doesNotMatch(out, /berth\.lb: berth\.lb=|berth\.htp\.host: berth\.htp\.host/);
  // No port at all is said as such, not as an empty table.
  assert.match(out, /\nPorts\n {2}\(none: the container exposes and publishes no port\)\n/);
});
