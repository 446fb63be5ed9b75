import assert from "node:assert/strict";
import { NdjsonSplitter } from "./ndjson.ts";

Deno.test("NdjsonSplitter.push() joins lines split across chunks, even inside a character", () => {
  const bytes = new TextEncoder().encode('{"a":1}\n{"b":"é"}\n\n{"c":3}\n');
  const s = new NdjsonSplitter();
  const out: unknown[] = [];
  for (let i = 0; i < bytes.length; i += 3) out.push(...s.push(bytes.subarray(i, i + 3)));
  assert.deepEqual(out, [{ a: 1 }, { b: "é" }, { c: 3 }]);
  assert.equal(s.dropped, 0);
});

Deno.test("NdjsonSplitter.push() holds a partial line until its newline", () => {
  const s = new NdjsonSplitter();
  assert.deepEqual(s.push('{"a":'), []);
  assert.deepEqual(s.push('1}\n{"b"'), [{ a: 1 }]);
  assert.deepEqual(s.push(":2}\n"), [{ b: 2 }]);
});

Deno.test("NdjsonSplitter.push() drops bad JSON and over-long lines, then recovers", () => {
  const s = new NdjsonSplitter({ lineBytesMax: 16 });
  assert.deepEqual(s.push("not json\n"), []);
  assert.deepEqual(s.push('{"long":"' + "x".repeat(40)), []);
  assert.deepEqual(s.push('xx"}\n{"ok":1}\n'), [{ ok: 1 }]);
  assert.equal(s.dropped, 2);
});
