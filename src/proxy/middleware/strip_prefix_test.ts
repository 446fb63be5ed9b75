import assert from "node:assert/strict";
import { STRIP_PREFIX, stripPrefix } from "./strip_prefix.ts";
import { built, settingsOf, stateOf } from "./_request_testing.ts";
import { headerOf } from "./header_list.ts";

Deno.test("stripPrefix() removes the prefix and keeps a path and the query", () => {
  assert.equal(stripPrefix("/api/x", "/api"), "/x");
  assert.equal(stripPrefix("/api/x/y?q=1&r", "/api"), "/x/y?q=1&r");
  assert.equal(stripPrefix("/api", "/api"), "/");
  assert.equal(stripPrefix("/api?q", "/api"), "/?q");
  assert.equal(stripPrefix("/api/", "/api"), "/");
  assert.equal(stripPrefix("/a/b/c", "/a/b"), "/c");
  assert.equal(stripPrefix("/x", "/"), "/x", "a whole-host route keeps its path");
  assert.equal(stripPrefix("/other", "/api"), "/other");
});

Deno.test("STRIP_PREFIX: sets the URL and X-Forwarded-Prefix, replacing the client's", () => {
  const m = built(STRIP_PREFIX, { "berth.http.strip-prefix": "true" });
  const s = stateOf({
    url: "/api/users?id=7",
    prefix: "/api",
    headers: ["host", "a.test", "X-Forwarded-Prefix", "/evil"],
  });
  assert.equal(m.request!(s), null);
  assert.equal(s.url, "/users?id=7");
  assert.equal(headerOf(s.headers, "x-forwarded-prefix"), "/api");
  assert.equal(s.headers.filter((h) => h.toLowerCase() === "x-forwarded-prefix").length, 1);
  const whole = stateOf({ url: "/x", prefix: "/" });
  m.request!(whole);
  assert.equal(whole.url, "/x");
  assert.equal(headerOf(whole.headers, "x-forwarded-prefix"), undefined);
});

Deno.test("STRIP_PREFIX: off without the key, with false, or a value that does not parse", () => {
  assert.equal(STRIP_PREFIX.build(settingsOf({})), null);
  assert.equal(STRIP_PREFIX.build(settingsOf({ "berth.http.strip-prefix": "false" })), null);
  assert.equal(STRIP_PREFIX.build(settingsOf({ "berth.http.strip-prefix": "yes" })), null);
});
