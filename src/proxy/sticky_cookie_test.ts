import assert from "node:assert/strict";
import { Balancer, type Target } from "./balancer.ts";
import type { DispatchSink } from "./conn_info.ts";
import type { Exchange } from "./exchange.ts";
import { buildRouteTable, type ServiceRoute } from "./routes.ts";
import { spec } from "./_testing.ts";
import {
  cookieTarget,
  ensureStickyCookie,
  setCookie,
  stickyCookieName,
  StickySink,
} from "./sticky_cookie.ts";
import { UpstreamPool } from "./upstream_pool.ts";
import type { Instance } from "../store/mod.ts";

/** The route of `service` over instances `ids` with `meta` (berth.lb=sticky_cookie + more). */
function route(service: string, ids: string[], meta: Record<string, string> = {}): ServiceRoute {
  const instances: Instance[] = ids.map((id, n) => ({
    ...spec({
      id,
      service,
      port: 10_000 + n,
      meta: { "berth.lb": "sticky_cookie", ...meta },
    }),
    createIndex: 1,
    modifyIndex: 1,
  }));
  return buildRouteTable(instances, []).services.get(service)!;
}

/** A sink that keeps the heads written to it. */
function recorder() {
  const heads: { status: number; headers: readonly string[] }[] = [];
  const sink = {
    destroyed: false,
    headersSent: false,
    writableEnded: false,
    shouldKeepAlive: true,
    writeHead(status: number, _reason: string, headers: readonly string[]) {
      heads.push({ status, headers });
    },
  } as unknown as DispatchSink;
  return { heads, sink };
}

function exchange(
  r: ServiceRoute,
  opts: { cookie?: string; secure?: boolean; answeredBy?: Target },
  res: DispatchSink,
): Exchange {
  return {
    route: r,
    req: {
      method: "GET",
      url: "/",
      rawHeaders: opts.cookie === undefined ? [] : ["Cookie", opts.cookie],
      remoteAddress: "192.0.2.1",
      body: null,
    },
    conn: { secure: opts.secure ?? false },
    answeredBy: opts.answeredBy,
    tried: [],
    res,
  } as unknown as Exchange;
}

const header = (headers: readonly string[], name: string) => {
  const out: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() === name) out.push(headers[i + 1]!);
  }
  return out;
};

Deno.test("stickyCookieName(): berth.lb.cookie, else berth_<service> with non-token characters replaced", () => {
  assert.equal(stickyCookieName(route("web", ["w1"])), "berth_web");
  assert.equal(stickyCookieName(route("my.app@v2", ["a1"])), "berth_my.app_v2");
  assert.equal(stickyCookieName(route("web", ["w1"], { "berth.lb.cookie": "sid" })), "sid");
});

Deno.test("setCookie(): HttpOnly and SameSite=Lax always, Secure over HTTPS, Max-Age with a TTL", () => {
  assert.equal(
    setCookie("sid", "t1", { secure: false, maxAgeS: null }),
    "sid=t1; Path=/; HttpOnly; SameSite=Lax",
  );
  assert.equal(
    setCookie("sid", "t1", { secure: true, maxAgeS: 3600 }),
    "sid=t1; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=3600",
  );
});

Deno.test("cookieTarget(): the cookie's instance unless tried or ejected; a stale cookie before it is passed over", () => {
  const r = route("web", ["w1", "w2"]);
  const [w1, w2] = r.balancer.targets as Target[];
  const pool = new UpstreamPool();
  const cookie = (v: string) => ["cookie", v];
  assert.equal(cookieTarget(pool, r, cookie(`berth_web=${Balancer.token(w2!)}`)), w2);
  assert.equal(
    cookieTarget(pool, r, cookie(`berth_web=gone; berth_web=${Balancer.token(w1!)}`)),
    w1,
    "the first value that names an instance counts",
  );
  assert.equal(cookieTarget(pool, r, cookie("berth_web=gone")), null);
  assert.equal(cookieTarget(pool, r, cookie(`other=${Balancer.token(w1!)}`)), null);
  assert.equal(cookieTarget(pool, r, cookie(`berth_web=${Balancer.token(w1!)}`), [w1!]), null);
  pool.eject(w1!.key, 60_000);
  assert.equal(cookieTarget(pool, r, cookie(`berth_web=${Balancer.token(w1!)}`)), null);
});

Deno.test("StickySink: sets the answering instance's cookie (Secure over HTTPS, Max-Age by ttl) and makes the response private", () => {
  const r = route("web", ["w1", "w2"], { "berth.lb.cookie.ttl": "1h" });
  const [w1] = r.balancer.targets as Target[];
  const { heads, sink } = recorder();
  new StickySink(exchange(r, { secure: true, answeredBy: w1 }, sink), sink)
    .writeHead(200, "OK", ["content-type", "text/plain"]);
  assert.deepEqual(heads[0]!.headers, [
    "content-type",
    "text/plain",
    "set-cookie",
    `berth_web=${Balancer.token(w1!)}; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=3600`,
    "cache-control",
    "private",
  ]);
});

Deno.test("StickySink: no cookie when the request carried that instance's, or the proxy answered itself", () => {
  const r = route("web", ["w1", "w2"]);
  const [w1, w2] = r.balancer.targets as Target[];
  const { heads, sink } = recorder();
  const had = exchange(r, { cookie: `berth_web=${Balancer.token(w1!)}`, answeredBy: w1 }, sink);
  new StickySink(had, sink).writeHead(200, "OK", []);
  new StickySink(exchange(r, {}, sink), sink).writeHead(503, "Service Unavailable", []);
  // The cookie named w1 but w2 answered (w1 failed): the new instance's cookie is set.
  const moved = exchange(r, { cookie: `berth_web=${Balancer.token(w1!)}`, answeredBy: w2 }, sink);
  new StickySink(moved, sink).writeHead(200, "OK", ["Cache-Control", "no-store"]);
  assert.deepEqual(heads[0]!.headers, []);
  assert.deepEqual(heads[1]!.headers, []);
  assert.deepEqual(header(heads[2]!.headers, "set-cookie"), [
    `berth_web=${Balancer.token(w2!)}; Path=/; HttpOnly; SameSite=Lax`,
  ]);
  assert.deepEqual(header(heads[2]!.headers, "cache-control"), ["no-store"], "already uncached");
});

Deno.test("ensureStickyCookie(): wraps an exchange's sink once", () => {
  const r = route("web", ["w1"]);
  const { sink } = recorder();
  const x = exchange(r, {}, sink);
  ensureStickyCookie(x);
  const first = x.res;
  assert.ok(first instanceof StickySink);
  ensureStickyCookie(x);
  assert.equal(x.res, first);
});
