import assert from "node:assert/strict";
import { RouteSettings } from "../route_settings.ts";
import type { PlainAnswer } from "../exchange.ts";
import type { RequestState } from "./pipeline.ts";
import type { ServiceRoute } from "../routes.ts";
import { settingsOf, stateOf } from "./_request_testing.ts";
import { clientKey, rateLimitPart } from "./ratelimit.ts";
import { RateBuckets } from "./rate_buckets.ts";

/** The part over a fresh table and a clock the test moves. */
function part() {
  const clock = { ms: 1_000_000 };
  const buckets = RateBuckets.create(16);
  return { clock, part: rateLimitPart({ buckets: () => buckets, now: () => clock.ms }) };
}

function state(service: string, client: string): RequestState {
  return stateOf({ route: { service } as ServiceRoute, client });
}

const settings = settingsOf;

Deno.test("ratelimit part: off without berth.http.ratelimit or with an unreadable value", () => {
  const { part: p } = part();
  assert.equal(p.build(RouteSettings.EMPTY), null);
  assert.equal(p.build(settings({ "berth.http.compress": "gzip" })), null);
  assert.equal(p.build(settings({ "berth.http.ratelimit": "fast" })), null);
});

Deno.test("ratelimit middleware: a client's burst passes, then 429 with Retry-After (a body naming neither service nor limit) until a token is back", () => {
  const { clock, part: p } = part();
  const m = p.build(settings({ "berth.http.ratelimit": "1/m,burst=3" }))!;
  assert.equal(m.name, "ratelimit");
  const s = state("web", "192.0.2.1");
  for (let i = 0; i < 3; i++) assert.equal(m.request!(s), null);
  const refused = m.request!(s);
  assert.deepEqual(refused, {
    status: 429,
    text: "too many requests",
    headers: ["retry-after", "60"],
  });
  clock.ms += 59_500;
  assert.deepEqual((m.request!(s) as PlainAnswer).headers, ["retry-after", "1"]);
  clock.ms += 500;
  assert.equal(m.request!(s), null);
});

Deno.test("ratelimit middleware: buckets are per client and per service, and outlive a rebuild", () => {
  const { part: p } = part();
  const limit = settings({ "berth.http.ratelimit": "1/m,burst=1" });
  const m = p.build(limit)!;
  assert.equal(m.request!(state("web", "192.0.2.1")), null);
  assert.notEqual(m.request!(state("web", "192.0.2.1")), null);
  assert.equal(m.request!(state("web", "192.0.2.2")), null); // another client
  assert.equal(m.request!(state("api", "192.0.2.1")), null); // another service
  // The route is rebuilt (new settings object, same limit): the client is still limited.
  const rebuilt = p.build(settings({ "berth.http.ratelimit": "1/m,burst=1" }))!;
  assert.notEqual(rebuilt.request!(state("web", "192.0.2.1")), null);
});

Deno.test("clientKey(): IPv4 as it is (mapped too), IPv6 by its /64", () => {
  assert.equal(clientKey("192.0.2.1"), "192.0.2.1");
  assert.equal(clientKey("::ffff:192.0.2.1"), "192.0.2.1");
  assert.equal(clientKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  assert.equal(clientKey("2001:db8:1:2:bbbb:cccc:dddd:eeee"), "2001:db8:1:2::/64");
  assert.equal(clientKey("not an address"), "not an address");
});

Deno.test("ratelimit middleware: IPv6 clients of one /64 share a bucket", () => {
  const { part: p } = part();
  const m = p.build(settings({ "berth.http.ratelimit": "1/m,burst=1" }))!;
  assert.equal(m.request!(state("web", "2001:db8:1:2::1")), null);
  assert.notEqual(m.request!(state("web", "2001:db8:1:2::2")), null, "same /64");
  assert.equal(m.request!(state("web", "2001:db8:1:3::1")), null, "another /64");
});
