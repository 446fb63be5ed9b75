import assert from "node:assert/strict";
import { REDIRECT } from "./redirect.ts";
import { built, settingsOf, stateOf } from "./_request_testing.ts";

Deno.test("REDIRECT: a matching full URL gets the status and Location", () => {
  const m = built(REDIRECT, {
    "berth.http.redirect": "^http://old\\.test(:\\d+)?/(.*) https://new.test/$2 301",
  });
  const a = m.request!(stateOf({ host: "old.test:8080", url: "/a/b?c=d" }));
  assert.deepEqual(a, {
    status: 301,
    text: "see https://new.test/a/b?c=d",
    headers: ["location", "https://new.test/a/b?c=d"],
  });
  assert.equal(m.request!(stateOf({ host: "other.test", url: "/a" })), null, "no match");
  assert.equal(m.request!(stateOf({ host: "old.test", url: "/x", conn: { secure: true } })), null);
});

Deno.test("REDIRECT: 302 by default; a URL left unchanged goes on (no loop)", () => {
  const m = built(REDIRECT, { "berth.http.redirect": "^(https?)://www\\.(.*) $1://$2 302" });
  const a = m.request!(stateOf({ host: "www.a.test", url: "/" })) as { status: number };
  assert.equal(a.status, 302);
  const same = built(REDIRECT, { "berth.http.redirect": "^(http://.*)$ $1" });
  assert.equal(same.request!(stateOf({ url: "/x" })), null);
});

Deno.test("REDIRECT: a Host with bytes no URL holds gets 400, not a broken Location", () => {
  const m = built(REDIRECT, { "berth.http.redirect": "^http://([^/]*)/(.*) https://$1/$2" });
  const a = m.request!(stateOf({ host: "a\u00e9.test", url: "/" })) as { status: number };
  assert.equal(a.status, 400);
});

Deno.test("REDIRECT: off without the key, for https (the edge's), and for a bad value", () => {
  assert.equal(REDIRECT.build(settingsOf({})), null);
  assert.equal(REDIRECT.build(settingsOf({ "berth.http.redirect": "https" })), null);
  assert.equal(REDIRECT.build(settingsOf({ "berth.http.redirect": "^(x /y/$2" })), null);
});
