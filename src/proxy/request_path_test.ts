import assert from "node:assert/strict";
import { normalizeTarget, saneHost } from "./request_path.ts";

function url(target: string): string {
  const n = normalizeTarget(target);
  assert.ok("url" in n, `${target}: refused (${"refused" in n ? n.refused : ""})`);
  return n.url;
}

function refused(target: string): string {
  const n = normalizeTarget(target);
  assert.ok("refused" in n, `${target}: not refused (${"url" in n ? n.url : ""})`);
  return n.refused;
}

Deno.test("normalizeTarget: a plain path and its query come back unchanged", () => {
  for (const t of ["/", "/admin", "/admin/", "/a/b.c/d?x=../y//z", "/a.b", "/.well", "/a;p=1"]) {
    assert.equal(url(t), t);
  }
  assert.equal(url("/a?next=/x/../y//z%2F"), "/a?next=/x/../y//z%2F", "the query is not touched");
});

Deno.test("normalizeTarget: dot segments are removed and slashes merged", () => {
  assert.equal(url("/x/../admin"), "/admin");
  assert.equal(url("//admin"), "/admin");
  assert.equal(url("/./admin"), "/admin");
  assert.equal(url("/a//b///c"), "/a/b/c");
  assert.equal(url("/a/b/.."), "/a/");
  assert.equal(url("/a/b/."), "/a/b/");
  assert.equal(url("/a/.."), "/");
  assert.equal(url("//"), "/");
  assert.equal(url("/x/../admin?q=1"), "/admin?q=1");
});

Deno.test("normalizeTarget: unreserved characters are decoded, other encodings upper-cased", () => {
  assert.equal(url("/%61dmin"), "/admin");
  assert.equal(url("/%7Euser/%2d%5F"), "/~user/-_");
  assert.equal(url("/a/%2e%2E/admin"), "/admin", "an encoded .. is a .. segment");
  assert.equal(url("/caf%c3%a9"), "/caf%C3%A9");
  assert.equal(url("/100%25"), "/100%25");
  assert.equal(url("/a%20b"), "/a%20b");
});

Deno.test("normalizeTarget: ambiguous forms are refused", () => {
  assert.match(refused("/admin#x"), /fragment/);
  assert.match(refused("/admin?x#y"), /fragment/);
  assert.match(refused("/admin%2Fx"), /encoded \//);
  assert.match(refused("/admin%2fx"), /encoded \//);
  assert.match(refused("/admin%5Cx"), /encoded \\/);
  assert.match(refused("/admin%00"), /NUL/);
  assert.match(refused("/admin\\x"), /backslash/);
  assert.match(refused("/a%zz"), /malformed/);
  assert.match(refused("/a%4"), /malformed/);
  assert.match(refused("/.."), /above/);
  assert.match(refused("/a/../../admin"), /above/);
  assert.match(refused("/x/..;/admin"), /parameters/);
  assert.match(refused("/x/.;a/admin"), /parameters/);
});

Deno.test("normalizeTarget: a target that is no path comes back unchanged", () => {
  assert.equal(url("*"), "*");
  assert.equal(url("http://a.test/x/../y"), "http://a.test/x/../y");
});

Deno.test("saneHost: a name or bracketed IPv6 address with an optional port, nothing else", () => {
  for (const h of ["web.test", "WWW.Example.com:8080", "10.0.0.1:80", "[::1]", "[::1]:443", ""]) {
    assert.equal(saneHost(h), true, h);
  }
  for (
    const h of [
      "www.example.com:@evil.test",
      "www.example.com:80@evil.test",
      "a b",
      "web.test:123456",
      "web.test/x",
      "[::1",
      "user@web.test",
    ]
  ) assert.equal(saneHost(h), false, h);
});
