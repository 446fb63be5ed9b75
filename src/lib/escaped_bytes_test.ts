import assert from "node:assert/strict";
import { bytesContain, unescapeBytes } from "./escaped_bytes.ts";

Deno.test("unescapeBytes() turns text into UTF-8 and escapes into their bytes", () => {
  const cases: [string, number[]][] = [
    ["", []],
    ["PING", [0x50, 0x49, 0x4e, 0x47]],
    ["a\\r\\n", [0x61, 0x0d, 0x0a]],
    ["\\x00\\xfF\\t", [0x00, 0xff, 0x09]],
    ["\\0\\\\x", [0x00, 0x5c, 0x78]],
    ["é\\x01", [0xc3, 0xa9, 0x01]],
  ];
  for (const [text, bytes] of cases) assert.deepEqual([...unescapeBytes(text)], bytes, text);
});

Deno.test("unescapeBytes() refuses a bad escape with a one-line reason", () => {
  for (
    const [text, why] of [
      ["\\x4", /two hex digits/],
      ["\\xZZ", /two hex digits/],
      ["a\\q", /unknown escape "\\q" at character 2/],
      ["end\\", /lone backslash/],
    ] as const
  ) {
    assert.throws(
      () => unescapeBytes(text),
      (e: Error) => why.test(e.message) && !e.message.includes("\n"),
    );
  }
});

Deno.test("bytesContain() finds a needle anywhere, including after a false start", () => {
  const b = (s: string) => new TextEncoder().encode(s);
  assert.ok(bytesContain(b("xxPONG\n"), b("PONG")));
  assert.ok(bytesContain(b("PPONG"), b("PONG")));
  assert.ok(bytesContain(b("abc"), b("")));
  assert.ok(!bytesContain(b("PON"), b("PONG")));
  assert.ok(!bytesContain(b("POxNG"), b("PONG")));
});
