import assert from "node:assert/strict";
import { RequestIds, saneRequestId } from "./request_id.ts";

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
