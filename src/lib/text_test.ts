import assert from "node:assert/strict";
import { intOrText, parseBool, splitList } from "./text.ts";

Deno.test("splitList() trims, drops empty items and duplicates", () => {
  assert.deepEqual(splitList(" a, b,,a ,"), ["a", "b"]);
  assert.deepEqual(splitList(""), []);
});

Deno.test("intOrText() reads decimal integers and leaves anything else as text", () => {
  assert.equal(intOrText(" 42 "), 42);
  assert.equal(intOrText("-1"), -1);
  assert.equal(intOrText("1.5"), "1.5");
  assert.equal(intOrText("0x10"), "0x10");
  assert.equal(intOrText("heavy"), "heavy");
  assert.equal(intOrText("99999999999999999999"), "99999999999999999999");
});

Deno.test("parseBool() reads true/false and their usual spellings, null otherwise", () => {
  for (const t of ["true", "1", "YES", " on "]) assert.equal(parseBool(t), true, t);
  for (const f of ["false", "0", "No", "off"]) assert.equal(parseBool(f), false, f);
  assert.equal(parseBool("sure"), null);
});
