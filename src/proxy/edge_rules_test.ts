import assert from "node:assert/strict";
import { acmeChallengeToken, httpsLocation, withHsts } from "./edge_rules.ts";

Deno.test("acmeChallengeToken() takes base64url tokens under /.well-known/acme-challenge/ only", () => {
  const cases: [string, string | null | undefined][] = [
    [
      "/.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
      "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
    ],
    ["/.well-known/acme-challenge/a_b-C", "a_b-C"],
    ["/.well-known/acme-challenge/", null],
    ["/.well-known/acme-challenge/a/b", null],
    ["/.well-known/acme-challenge/../x", null],
    ["/.well-known/acme-challenge/a?x=1", null],
    ["/.well-known/acme-challenge/a%2F", null],
    [`/.well-known/acme-challenge/${"a".repeat(129)}`, null],
    ["/.well-known/acme-challengeX", undefined],
    ["/", undefined],
    ["/x/.well-known/acme-challenge/a", undefined],
  ];
  for (const [url, want] of cases) assert.equal(acmeChallengeToken(url), want, url);
});

Deno.test("httpsLocation() keeps host, path and query, and the port unless it is 443", () => {
  const cases: [string, string, number, string | null][] = [
    ["web.test", "/a?b=1", 443, "https://web.test/a?b=1"],
    ["web.test:8080", "/", 8443, "https://web.test:8443/"],
    ["WEB.test:80", "/x", 443, "https://WEB.test/x"],
    ["[::1]:8080", "/", 443, "https://[::1]/"],
    ["127.0.0.1", "/p", 443, "https://127.0.0.1/p"],
    ["evil.test/x", "/", 443, null],
    ["a b", "/", 443, null],
    ["web.test:x", "/", 443, null],
    ["", "/", 443, null],
    ["web.test", "*", 443, null],
    ["web.test", "http://other.test/", 443, null],
    ["web.test", "//other.test/", 443, null],
  ];
  for (const [host, url, port, want] of cases) {
    assert.equal(httpsLocation(host, url, port), want, `${host} ${url}`);
  }
});

Deno.test("withHsts() replaces any Strict-Transport-Security the instance sent", () => {
  assert.deepEqual(
    withHsts(["a", "1", "Strict-Transport-Security", "max-age=1", "b", "2"], "max-age=60"),
    ["a", "1", "b", "2", "strict-transport-security", "max-age=60"],
  );
  assert.deepEqual(withHsts([], "max-age=0"), ["strict-transport-security", "max-age=0"]);
});
