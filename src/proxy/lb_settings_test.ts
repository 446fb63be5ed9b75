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
  assert.deepEqual(idleLbSettings("hash", all), [
    "berth.lb.cookie does nothing under berth.lb=hash (it is berth.lb=sticky_cookie's)",
    "berth.lb.cookie.ttl does nothing under berth.lb=hash (it is berth.lb=sticky_cookie's)",
    "berth.http.slow-start does nothing under berth.lb=hash (hashed keys must reach the same instance)",
    "berth.http.max-conns.queue does nothing without berth.http.max-conns",
  ]);
  assert.deepEqual(idleLbSettings("sticky_cookie", all), [
    "berth.lb.hash does nothing under berth.lb=sticky_cookie (it is what berth.lb=hash hashes)",
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
