import assert from "node:assert/strict";
import { CommandError } from "./rule_basics.ts";
import {
  ALLOW_KEY,
  AUTH_BASIC_KEY,
  AUTH_REALM_KEY,
  HTTP_KEYS,
  parseBasicAuth,
  parseRedirect,
  parseRewrite,
  REDIRECT_KEY,
  REQUEST_HEADER_PREFIX,
  REQUEST_HEADERS_REMOVE_KEY,
  RESPONSE_HEADER_PREFIX,
  RESPONSE_HEADERS_REMOVE_KEY,
  REWRITE_KEY,
  STRIP_PREFIX_KEY,
} from "./route_keys_http.ts";
import { replaceAll } from "./regex_replace.ts";

/** htpasswd -nbB -C 5 alice 'open sesame' */
const ALICE = "$2y$05$RSHBjHt/M4PB2K2baOOtpONVspbT9e/0THJF5lxdxXnD0/9krfPGu";
/** htpasswd -nbB -C 4 bob hunter2 */
const BOB = "$2y$04$kaAwnn/Ky58PrgaO9aW9vuMtPsyE3U3RtV9HmHdxqbBizysAxSuEO";

function row(key: string) {
  const r = HTTP_KEYS.find((k) => k.key === key);
  assert.ok(r, key);
  return r;
}

/** The canonical text of `value` for `key` (a family member's full key for families). */
function parse(key: string, value: string, fullKey = key): string {
  return row(key).parse(value, fullKey);
}

function refuses(key: string, value: string, fullKey = key): string {
  try {
    parse(key, value, fullKey);
  } catch (e) {
    assert.ok(e instanceof CommandError, String(e));
    assert.ok(e.want !== "", `${key}=${value}: says what it wants`);
    return e.want;
  }
  assert.fail(`${fullKey}=${value} was accepted`);
}

Deno.test("HTTP_KEYS: every row has a key, an example, a doc line and an onBad", () => {
  const keys = new Set<string>();
  for (const r of HTTP_KEYS) {
    assert.ok(r.key.startsWith("berth.http."), r.key);
    assert.ok(!keys.has(r.key), `${r.key} once`);
    keys.add(r.key);
    assert.ok(r.example !== "" && r.doc !== "" && r.onBad !== "", r.key);
  }
});

Deno.test("berth.http.strip-prefix: true/false in any case, nothing else", () => {
  assert.equal(parse(STRIP_PREFIX_KEY, "TRUE"), "true");
  assert.equal(parse(STRIP_PREFIX_KEY, " false "), "false");
  for (const bad of ["yes", "1", "/api"]) refuses(STRIP_PREFIX_KEY, bad);
});

Deno.test("berth.http.rewrite: REGEX REPLACEMENT with $N up to the regex's groups", () => {
  assert.equal(parse(REWRITE_KEY, "  ^/old/(.*)   /new/$1 "), "^/old/(.*) /new/$1");
  assert.equal(parse(REWRITE_KEY, "^/a\\sb(c) /x$1$$"), "^/a\\sb(c) /x$1$$");
  assert.match(refuses(REWRITE_KEY, "^/a b(c) /x"), /REGEX REPLACEMENT/, "no space in the regex");
  assert.match(refuses(REWRITE_KEY, "^/old/(.* /new"), /RE2 regex/);
  assert.match(refuses(REWRITE_KEY, "^/old/(.*) /new/$2"), /up to \$1/);
  assert.match(refuses(REWRITE_KEY, "^/old/ /new/$x"), /\$0…\$9/);
  assert.match(refuses(REWRITE_KEY, "^/old/ /new/$"), /\$0…\$9/);
  assert.match(refuses(REWRITE_KEY, "/only-one-part"), /REGEX REPLACEMENT/);
  assert.match(refuses(REWRITE_KEY, "(a)\\1 /x"), /RE2 regex/, "no backreferences");
  assert.match(refuses(REWRITE_KEY, "(?<=a)b /x"), /RE2 regex/, "no lookbehind");
  refuses(REWRITE_KEY, `${"(a|b)".repeat(90)} /x`);
});

Deno.test("parseRewrite() replaces every match, expands $0…$9 and $$, keeps the query", () => {
  const r = parseRewrite("^/old/(.*) /new/$1");
  assert.equal(replaceAll(r, "/old/a/b?x=1"), "/new/a/b?x=1");
  assert.equal(replaceAll(r, "/other"), null);
  const all = parseRewrite("o /0");
  assert.equal(replaceAll(all, "/foo"), "/f/0/0", "every match, as Go's ReplaceAllString");
  const groups = parseRewrite("^/(a)(b)?(c) /$3$2$1-$0-$$");
  assert.equal(replaceAll(groups, "/ac"), "/ca-/ac-$", "an unmatched group is empty");
});

Deno.test("berth.http.redirect: https, or REGEX REPLACEMENT [STATUS] (302 by default)", () => {
  assert.equal(parse(REDIRECT_KEY, "HTTPS"), "https");
  assert.equal(
    parse(REDIRECT_KEY, "^http://old\\.example/(.*) https://new.example/$1"),
    "^http://old\\.example/(.*) https://new.example/$1 302",
  );
  assert.equal(parse(REDIRECT_KEY, "^http://a/ https://b/ 308"), "^http://a/ https://b/ 308");
  assert.equal(parse(REDIRECT_KEY, "^/x 301"), "^/x 301 302", "one part is the replacement");
  for (const bad of ["http", "https://example.com", "^http://a/ https://b/ 300", "a b c d"]) {
    refuses(REDIRECT_KEY, bad);
  }
  assert.match(refuses(REDIRECT_KEY, "^(http):// https://$2 301"), /up to \$1/);
  const r = parseRedirect("^http://a\\.test(:\\d+)?/(.*) https://b.test/$2 307");
  assert.ok(r.kind === "regex");
  assert.equal(r.status, 307);
  assert.equal(replaceAll(r.rule, "http://a.test:8080/p?q=1"), "https://b.test/p?q=1");
});

Deno.test("berth.http.request-header.NAME / response-header.NAME: token names, clean values", () => {
  const req = (name: string) => REQUEST_HEADER_PREFIX + name;
  const res = (name: string) => RESPONSE_HEADER_PREFIX + name;
  assert.equal(parse(REQUEST_HEADER_PREFIX, "  prod  ", req("X-Env")), "prod");
  assert.match(refuses(REQUEST_HEADER_PREFIX, "a.example", req("Host")), /Host/);
  assert.equal(
    parse(RESPONSE_HEADER_PREFIX, "max-age=60, public", res("Cache-Control")),
    "max-age=60, public",
  );
  for (const name of ["Content-Length", "transfer-encoding", "Connection", "Upgrade", "TE"]) {
    assert.match(refuses(REQUEST_HEADER_PREFIX, "x", req(name)), /framing/, name);
    assert.match(refuses(RESPONSE_HEADER_PREFIX, "x", res(name)), /framing/, name);
  }
  for (const name of ["X Env", "X:Env", "", "Ä"]) {
    assert.match(refuses(REQUEST_HEADER_PREFIX, "x", req(name)), /token/, name);
  }
  for (const value of ["a\r\nX-Evil: 1", "a\nb", "a\0b", "a\x7fb", "é"]) {
    assert.match(refuses(RESPONSE_HEADER_PREFIX, value, res("X-A")), /visible ASCII/);
  }
});

Deno.test("berth.http.*-headers.remove: token names, lower-cased, once; never Host", () => {
  assert.equal(parse(REQUEST_HEADERS_REMOVE_KEY, "Cookie, X-Debug,cookie"), "cookie,x-debug");
  assert.equal(parse(RESPONSE_HEADERS_REMOVE_KEY, "Server,X-Powered-By"), "server,x-powered-by");
  assert.match(refuses(REQUEST_HEADERS_REMOVE_KEY, "Host"), /Host/);
  assert.match(refuses(RESPONSE_HEADERS_REMOVE_KEY, "Server,Content-Length"), /framing/);
  refuses(REQUEST_HEADERS_REMOVE_KEY, "a,,b");
  refuses(REQUEST_HEADERS_REMOVE_KEY, "a b");
});

Deno.test("berth.http.auth.basic: user:bcrypt pairs ($2y$, $2a$, $2b$), cost 4 to 14", () => {
  assert.equal(parse(AUTH_BASIC_KEY, ` alice:${ALICE} , bob:${BOB}`), `alice:${ALICE},bob:${BOB}`);
  const users = parseBasicAuth(`bob:${BOB.replace("$2y$", "$2b$")}`);
  assert.equal(users.get("bob"), BOB.replace("$2y$", "$2b$"));
  parse(AUTH_BASIC_KEY, `a:${ALICE.replace("$2y$", "$2a$")}`);
  assert.equal(parse(AUTH_BASIC_KEY, " none "), "none", "nobody");
  assert.equal(parseBasicAuth("none").size, 0);
  assert.equal(row(AUTH_BASIC_KEY).failClosed, "none", "a bad label lets nobody in");
  assert.match(refuses(AUTH_BASIC_KEY, "alice:secret"), /for user alice/, "plain password");
  // What compose leaves of an unescaped hash ($2y, $05 and $RSH… read as variables).
  refuses(AUTH_BASIC_KEY, "alice:BjHt/M4PB2K2baOOtpONVspbT9e/0THJF5lxdxXnD0/9krfPGu");
  assert.match(refuses(AUTH_BASIC_KEY, `alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=`), /htpasswd/);
  refuses(AUTH_BASIC_KEY, `alice:${ALICE.replace("$2y$", "$2x$")}`);
  refuses(AUTH_BASIC_KEY, `alice:${ALICE.slice(0, -1)}`);
  assert.match(refuses(AUTH_BASIC_KEY, `a:${ALICE.replace("$05$", "$15$")}`), /cost from 4 to 14/);
  refuses(AUTH_BASIC_KEY, `a:${ALICE.replace("$05$", "$03$")}`);
  assert.match(refuses(AUTH_BASIC_KEY, `a:${ALICE},a:${BOB}`), /once/);
  refuses(AUTH_BASIC_KEY, `:${ALICE}`);
  refuses(AUTH_BASIC_KEY, ALICE);
  refuses(AUTH_BASIC_KEY, `al ice:${ALICE}`);
  refuses(AUTH_BASIC_KEY, `alice:${ALICE},`);
});

Deno.test("berth.http.auth.realm: printable, no quotes or backslashes", () => {
  assert.equal(parse(AUTH_REALM_KEY, " Staff only "), "Staff only");
  for (const bad of ['a"b', "a\\b", "x".repeat(65), "a\tb"]) refuses(AUTH_REALM_KEY, bad);
});

Deno.test("berth.http.allow: IPv4/IPv6 CIDRs and plain addresses, canonical, once", () => {
  assert.equal(
    parse(ALLOW_KEY, "10.1.2.3/8, 192.168.1.7,2001:DB8::/32,10.0.0.0/8, ::ffff:127.0.0.1"),
    "10.0.0.0/8,192.168.1.7/32,2001:db8::/32,127.0.0.1/32",
  );
  assert.equal(parse(ALLOW_KEY, "none"), "none");
  assert.equal(row(ALLOW_KEY).failClosed, "none", "a bad label lets nobody in");
  for (const bad of ["10.0.0.0/33", "example.com", "10.0.0.0/8,", "1.2.3.4 5.6.7.8", "*"]) {
    assert.match(refuses(ALLOW_KEY, bad), /CIDR/, bad);
  }
});
