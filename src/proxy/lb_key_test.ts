import assert from "node:assert/strict";
import { Balancer } from "./balancer.ts";
import type { ClientRequest } from "./client_conn.ts";
import { clientKey, cookieValue, requestKey } from "./lb_key.ts";
import { buildRouteTable } from "./routes.ts";
import { RouteSettings } from "./route_settings.ts";
import { spec } from "./_testing.ts";
import type { Instance } from "../store/mod.ts";
import type { ServiceRoute } from "./routes.ts";

function route(policy: Balancer["policy"]): ServiceRoute {
  return {
    balancer: new Balancer(policy, []),
    settings: RouteSettings.EMPTY,
  } as unknown as ServiceRoute;
}

const req = (remoteAddress: string, rawHeaders: string[] = []) =>
  ({ method: "GET", url: "/", rawHeaders, remoteAddress, body: null }) as unknown as ClientRequest;

Deno.test("clientKey() writes IPv4-mapped IPv6 as IPv4 and keeps other addresses", () => {
  assert.equal(clientKey("::ffff:10.0.0.7"), "10.0.0.7");
  assert.equal(clientKey("10.0.0.7"), "10.0.0.7");
  assert.equal(clientKey("::1"), "::1");
  assert.equal(clientKey("::ffff:abcd"), "::ffff:abcd");
});

Deno.test("requestKey() is the client IP for hash and sticky_cookie and nothing for the others", () => {
  assert.equal(requestKey(route("hash"), req("::ffff:192.0.2.1")), "192.0.2.1");
  assert.equal(requestKey(route("sticky_cookie"), req("192.0.2.1")), "192.0.2.1");
  assert.equal(requestKey(route("hash"), req("192.0.2.1"), "198.51.100.2"), "198.51.100.2");
  for (const p of ["round_robin", "least_conn", "p2c"] as const) {
    assert.equal(requestKey(route(p), req("192.0.2.1")), undefined);
  }
});

Deno.test("cookieValue() finds a cookie in any Cookie header, by exact name, unquoted", () => {
  const raw = ["Host", "h", "cookie", "xsid=1; sid2=2", "Cookie", 'a=1; sid="s-3"; sid=4'];
  assert.equal(cookieValue(raw, "sid"), "s-3");
  assert.equal(cookieValue(raw, "xsid"), "1");
  assert.equal(cookieValue(raw, "a"), "1");
  assert.equal(cookieValue(raw, "id"), undefined);
  assert.equal(cookieValue(["cookie", "novalue; sid"], "sid"), undefined);
});

Deno.test("requestKey() with berth.lb.hash reads the header or cookie it names; none without it", () => {
  const inst = (service: string, hash: string): Instance => ({
    ...spec({
      id: `${service}-1`,
      service,
      port: 1,
      meta: { "berth.lb": "hash", "berth.lb.hash": hash },
    }),
    createIndex: 1,
    modifyIndex: 1,
  });
  const table = buildRouteTable([inst("h", "header:x-user"), inst("c", "cookie:sid")], []);
  const h = table.services.get("h")!;
  const c = table.services.get("c")!;
  const r = req("192.0.2.1", ["X-USER", "u1", "cookie", "sid=s1"]);
  assert.equal(requestKey(h, r), "u1");
  assert.equal(requestKey(c, r), "s1");
  assert.equal(requestKey(h, req("192.0.2.1")), undefined);
  assert.equal(requestKey(c, req("192.0.2.1")), undefined);
});
