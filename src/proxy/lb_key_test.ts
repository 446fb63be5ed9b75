import assert from "node:assert/strict";
import { Balancer } from "./balancer.ts";
import type { ClientRequest } from "./client_conn.ts";
import { clientKey, requestKey } from "./lb_key.ts";
import type { ServiceRoute } from "./routes.ts";

function route(policy: Balancer["policy"]): ServiceRoute {
  return { balancer: new Balancer(policy, []) } as unknown as ServiceRoute;
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
