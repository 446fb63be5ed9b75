import assert from "node:assert/strict";
import { RequestIdPolicy, RequestIds, requestIdSources, saneRequestId } from "./request_id.ts";

Deno.test("saneRequestId() keeps 1 to 128 visible ASCII characters, nothing else", () => {
  for (const ok of ["a", "abc-123_ZZ.~", "x".repeat(128), "!\"#$%&'()*+,/:;<=>?@[]^`{|}"]) {
    assert.equal(saneRequestId(ok), true, ok);
  }
  for (const bad of ["", "x".repeat(129), "has space", "tab\there", "é", "new\nline", "\u007f"]) {
    assert.equal(saneRequestId(bad), false, JSON.stringify(bad));
  }
});

Deno.test("RequestIds.next() counts up after one random prefix per RequestIds", () => {
  const ids = new RequestIds();
  const a = ids.next();
  const b = ids.next();
  assert.match(a, /^[0-9a-f]{12}-0$/);
  assert.equal(b, a.slice(0, 13) + "1");
  assert.notEqual(new RequestIds().next().slice(0, 12), a.slice(0, 12));
  const fixed = new RequestIds("p");
  for (let i = 0; i < 36; i++) fixed.next();
  assert.equal(fixed.next(), "p-10");
  assert.ok(saneRequestId(a));
});

/** A policy trusting `from` (null: anyone) whose new ids are `n-0`, `n-1`, … and its log. */
function policy(from: readonly string[] | null) {
  const lines: string[] = [];
  const p = new RequestIdPolicy(requestIdSources(from), (l) => lines.push(l), new RequestIds("n"));
  return { p, lines };
}

Deno.test("RequestIdPolicy.idOf() by default (any) keeps every client's sane id and logs nothing", () => {
  const { p, lines } = policy(null);
  assert.equal(p.idOf("abc-123", "203.0.113.1", undefined), "abc-123");
  assert.equal(p.idOf("gw-1", "198.51.100.7", "127.0.0.1"), "gw-1");
  assert.equal(p.idOf(undefined, "203.0.113.1", undefined), "n-0");
  assert.deepEqual(lines, []);
});

Deno.test("RequestIdPolicy.idOf() with none (an empty list) replaces every client's id and logs nothing", () => {
  const { p, lines } = policy([]);
  assert.equal(p.idOf("abc-123", "127.0.0.1", undefined), "n-0");
  assert.equal(p.idOf("gw-1", "198.51.100.7", "127.0.0.1"), "n-1");
  assert.deepEqual(lines, []);
});

Deno.test("RequestIdPolicy.idOf() with a list keeps the ids of listed clients and PROXY-header senders, and logs the first replaced one once", () => {
  const { p, lines } = policy(["10.0.0.0/8"]);
  assert.equal(p.idOf("a", "10.1.2.3", undefined), "a");
  assert.equal(p.idOf("b", "203.0.113.1", "10.0.0.9"), "b"); // sent by a listed balancer
  assert.deepEqual(lines, []);
  assert.equal(p.idOf(undefined, "203.0.113.1", undefined), "n-0"); // no id: nothing to say
  assert.deepEqual(lines, []);
  assert.equal(p.idOf("c", "203.0.113.1", "192.0.2.1"), "n-1");
  assert.equal(p.idOf("d", "203.0.113.2", undefined), "n-2");
  assert.deepEqual(lines, [
    "proxy: a request from 203.0.113.1 (PROXY header from 192.0.2.1) came with its own " +
    "X-Request-Id and got a new one (logged once): neither address is in --request-id-from " +
    "(list the proxy or gateway in front that sets it)",
  ]);
});

Deno.test("requestIdSources() makes null (any) of null or absent, an empty list (none) of none", () => {
  assert.equal(requestIdSources(null), null);
  assert.equal(requestIdSources(undefined), null);
  assert.equal(requestIdSources([])!.cidrs.length, 0);
  assert.equal(requestIdSources(["10.0.0.0/8"])!.has("10.9.9.9"), true);
});
