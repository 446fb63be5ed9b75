import assert from "node:assert/strict";
import { REWRITE } from "./rewrite.ts";
import { built, settingsOf, stateOf } from "./_request_testing.ts";
import { headerOf } from "./header_list.ts";

Deno.test("REWRITE: rewrites the path by the regex, keeping the query, naming the old path", () => {
  const m = built(REWRITE, { "berth.http.rewrite": "^/old/(.*) /new/$1" });
  const s = stateOf({ url: "/old/a/b?x=1" });
  assert.equal(m.request!(s), null);
  assert.equal(s.url, "/new/a/b?x=1");
  assert.equal(headerOf(s.headers, "x-replaced-path"), "/old/a/b");
  const other = stateOf({ url: "/else?old/" });
  m.request!(other);
  assert.equal(other.url, "/else?old/", "no match: unchanged");
  assert.equal(headerOf(other.headers, "x-replaced-path"), undefined);
});

Deno.test("REWRITE: matches the path only and keeps the query; a result gets a leading slash", () => {
  const anchored = built(REWRITE, { "berth.http.rewrite": "^/app$ /v2/app" });
  const a = stateOf({ url: "/app?x=1" });
  anchored.request!(a);
  assert.equal(a.url, "/v2/app?x=1", "an anchored rule matches a path with a query");
  const old = built(REWRITE, { "berth.http.rewrite": "/old/ /new/" });
  const o = stateOf({ url: "/old/a?next=/old/b" });
  old.request!(o);
  assert.equal(o.url, "/new/a?next=/old/b", "the query is not rewritten");
  const q = built(REWRITE, { "berth.http.rewrite": "lang=(\\w+) locale=$1" });
  const p = stateOf({ url: "/p?lang=de" });
  q.request!(p);
  assert.equal(p.url, "/p?lang=de", "a regex matching only in the query: unchanged");
  const bare = built(REWRITE, { "berth.http.rewrite": "^/v1/(.*) $1" });
  const b = stateOf({ url: "/v1/items" });
  bare.request!(b);
  assert.equal(b.url, "/items");
});

Deno.test("REWRITE: off without the key or with a value that does not parse", () => {
  assert.equal(REWRITE.build(settingsOf({})), null);
  assert.equal(REWRITE.build(settingsOf({ "berth.http.rewrite": "^/(a /x" })), null);
});
