import assert from "node:assert/strict";
import { chainOf } from "./order.ts";
import { EMPTY_CHAIN } from "./pipeline.ts";
import { settingsOf } from "./_request_testing.ts";

Deno.test("chainOf(): settings that turn no middleware on keep the empty chain", () => {
  assert.equal(chainOf(settingsOf({ "berth.http.timeout": "5s" })), EMPTY_CHAIN);
  assert.equal(chainOf(settingsOf({ "berth.lb.cookie": "srv" })), EMPTY_CHAIN);
});

Deno.test("chainOf(): the sticky-cookie stage comes with response header rules, after them", () => {
  const names = chainOf(settingsOf({ "berth.http.response-headers.remove": "Set-Cookie" })).names;
  assert.deepEqual(names, ["response-headers", "sticky-cookie"]);
  const set = chainOf(settingsOf({ "berth.http.response-header.X-A": "1" })).names;
  assert.deepEqual(set, ["response-headers", "sticky-cookie"]);
});

Deno.test("chainOf(): the request stages in the README's order", () => {
  const names = chainOf(settingsOf({
    "berth.http.allow": "10.0.0.0/8",
    "berth.http.ratelimit": "1/s",
    "berth.http.redirect": "^http://www\\.(.*) https://$1",
    "berth.http.auth.basic": "none",
    "berth.http.strip-prefix": "true",
  })).names;
  assert.deepEqual(names, ["allow", "ratelimit", "redirect", "basic-auth", "strip-prefix"]);
});
