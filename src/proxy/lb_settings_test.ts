import assert from "node:assert/strict";
import { idleLbSettings } from "./lb_settings.ts";
import { RouteSettings } from "./route_settings.ts";
import { buildRouteTable } from "./routes.ts";
import { spec } from "./_testing.ts";

const settings = (meta: Record<string, string>) => RouteSettings.fromMeta(meta);

Deno.test("idleLbSettings() names the balancing settings the policy does not use", () => {
  const all = settings({
    "berth.lb.hash": "header:X-User",
    "berth.lb.cookie": "srv",
    "berth.lb.cookie.ttl": "1h",
    "berth.http.slow-start": "30s",
    "berth.http.max-conns.queue": "10",
  });
  assert.deepEqual(idleLbSettings("round_robin", all), [
    "berth.lb.hash does nothing under berth.lb=round_robin (it is what berth.lb=hash hashes)",
    "berth.lb.cookie does nothing under berth.lb=round_robin (it is berth.lb=sticky_cookie's)",
    "berth.lb.cookie.ttl does nothing under berth.lb=round_robin (it is berth.lb=sticky_cookie's)",
    "berth.http.max-conns.queue does nothing without berth.http.max-conns",
  ]);
  // Hashing a header: requests without it go round robin, ramps included (no slow-start line).
  assert.deepEqual(idleLbSettings("hash", all), [
    "berth.lb.cookie does nothing under berth.lb=hash (it is berth.lb=sticky_cookie's)",
    "berth.lb.cookie.ttl does nothing under berth.lb=hash (it is berth.lb=sticky_cookie's)",
    "berth.http.max-conns.queue does nothing without berth.http.max-conns",
  ]);
  assert.deepEqual(idleLbSettings("sticky_cookie", all), [
    "berth.lb.hash does nothing under berth.lb=sticky_cookie (it is what berth.lb=hash hashes)",
    "berth.http.max-conns.queue does nothing without berth.http.max-conns",
  ]);
});

Deno.test("idleLbSettings() says slow start does nothing under hash only when the key is the client's IP", () => {
  const line = "berth.http.slow-start does nothing under berth.lb=hash of the client's IP " +
    "(every request has that key, and hashed keys must reach the same instance)";
  for (const hash of [undefined, "ip"]) {
    const meta: Record<string, string> = { "berth.http.slow-start": "30s" };
    if (hash !== undefined) meta["berth.lb.hash"] = hash;
    assert.deepEqual(idleLbSettings("hash", settings(meta)), [line], `berth.lb.hash=${hash}`);
  }
  for (const hash of ["header:X-User", "cookie:sid"]) {
    const meta = { "berth.http.slow-start": "30s", "berth.lb.hash": hash };
    assert.deepEqual(idleLbSettings("hash", settings(meta)), [], hash);
  }
});

Deno.test("idleLbSettings() names max-conns and its queue on h2c and grpc services", () => {
  const caps = settings({ "berth.http.max-conns": "1", "berth.http.max-conns.queue": "5" });
  for (const proto of ["h2c", "grpc"] as const) {
    const tail = `does nothing on berth.http.proto=${proto} (it caps HTTP/1.1 connections; ` +
      "HTTP/2 streams wait for room on the instance's sessions)";
    assert.deepEqual(idleLbSettings("round_robin", caps, { proto }), [
      `berth.http.max-conns ${tail}`,
      `berth.http.max-conns.queue ${tail}`,
    ]);
  }
  assert.deepEqual(idleLbSettings("round_robin", caps, { proto: "http1" }), []);
  assert.deepEqual(idleLbSettings("round_robin", caps), []);
});

Deno.test("idleLbSettings() names a queue whose max-conns the proxy cannot use", () => {
  const s = settings({ "berth.http.max-conns": "lots", "berth.http.max-conns.queue": "5" });
  assert.deepEqual(idleLbSettings("round_robin", s), [
    "berth.http.max-conns.queue does nothing without berth.http.max-conns",
  ]);
});

Deno.test("idleLbSettings() is silent when every setting is used", () => {
  assert.deepEqual(idleLbSettings("round_robin", RouteSettings.EMPTY), []);
  assert.deepEqual(
    idleLbSettings("hash", settings({ "berth.lb.hash": "ip", "berth.http.timeout": "5s" })),
    [],
  );
  assert.deepEqual(
    idleLbSettings(
      "sticky_cookie",
      settings({
        "berth.lb.cookie": "srv",
        "berth.http.slow-start": "30s",
        "berth.http.max-conns": "5",
        "berth.http.max-conns.queue": "10",
      }),
    ),
    [],
  );
});

Deno.test("buildRouteTable notes a hash key under the default policy as a conflict line", () => {
  const inst = (s: ReturnType<typeof spec>) => ({ ...s, createIndex: 1, modifyIndex: 1 });
  const table = buildRouteTable([
    inst(spec({ id: "web-1", service: "web", port: 81, meta: { "berth.lb.hash": "cookie:sid" } })),
    inst(spec({
      id: "api-1",
      service: "api",
      port: 82,
      httpHosts: ["api.test"],
      meta: { "berth.lb": "hash", "berth.lb.hash": "cookie:sid" },
    })),
  ], []);
  assert.deepEqual(table.conflicts, [
    "service web: berth.lb.hash does nothing under berth.lb=round_robin (it is what berth.lb=hash hashes)",
  ]);
});

Deno.test("buildRouteTable notes max-conns on a grpc service as a conflict line", () => {
  const inst = (s: ReturnType<typeof spec>) => ({ ...s, createIndex: 1, modifyIndex: 1 });
  const table = buildRouteTable([
    inst(spec({
      id: "rpc-1",
      service: "rpc",
      port: 81,
      meta: { "berth.http.proto": "grpc", "berth.http.max-conns": "1" },
    })),
    inst(spec({
      id: "web-1",
      service: "web",
      port: 82,
      httpHosts: ["web2.test"],
      meta: { "berth.http.max-conns": "1" },
    })),
  ], []);
  assert.deepEqual(table.conflicts, [
    "service rpc: berth.http.max-conns does nothing on berth.http.proto=grpc (it caps HTTP/1.1 " +
    "connections; HTTP/2 streams wait for room on the instance's sessions)",
  ]);
});
