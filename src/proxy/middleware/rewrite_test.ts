import assert from "node:assert/strict";
import { REWRITE } from "./rewrite.ts";
import { built, settingsOf, stateOf } from "./_request_testing.ts";
import { headerOf } from "./header_list.ts";

Deno.test("REWRITE: rewrites path and query by the regex, naming the old path", () => {
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

Deno.test("REWRITE: the query is rewritable, a result gets a leading slash", () => {
  const q = built(REWRITE, { "berth.http.rewrite": "\\?lang=(\\w+) ?locale=$1" });
  const s = stateOf({ url: "/p?lang=de" });
  q.request!(s);
  assert.equal(s.url, "/p?locale=de");
  const bare = built(REWRITE, { "berth.http.rewrite": "^/v1/(.*) $1" });
  const b = stateOf({ url: "/v1/items" });
  bare.request!(b);
  assert.equal(b.url, "/items");
});

Deno.test("REWRITE: off without the key or with a value that does not parse", () => {
  assert.equal(REWRITE.build(settingsOf({})), null);
  assert.equal(REWRITE.build(settingsOf({ "berth.http.rewrite": "^/(a /x" })), null);
});
