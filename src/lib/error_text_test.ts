import assert from "node:assert/strict";
import { controlsEscaped, ERROR_TEXT_CHARS_MAX, errorText } from "./error_text.ts";

Deno.test("errorText() gives an Error's message and any other value as text", () => {
  assert.equal(errorText(new Error("disk full")), "disk full");
  assert.equal(errorText("plain string"), "plain string");
  assert.equal(errorText(42), "42");
  assert.equal(errorText(null), "null");
  assert.equal(errorText(new TypeError("")), "TypeError");
});

Deno.test("errorText() folds a multi-line message onto one line", () => {
  assert.equal(errorText(new Error("first\n  second\tthird\n")), "first second third");
});

Deno.test("errorText() cuts a long message at ERROR_TEXT_CHARS_MAX", () => {
  const text = errorText(new Error("x".repeat(1000)));
  assert.equal(text.length, ERROR_TEXT_CHARS_MAX);
  assert.ok(text.endsWith("…"));
});

Deno.test("errorText() with preferCode gives the error code when there is one", () => {
  const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), {
    code: "ECONNREFUSED",
  });
  assert.equal(errorText(refused, { preferCode: true }), "ECONNREFUSED");
  assert.equal(errorText(refused), "connect ECONNREFUSED 127.0.0.1:1");
  assert.equal(errorText(new Error("no code"), { preferCode: true }), "no code");
});

Deno.test("controlsEscaped() writes control characters and line separators as \\uXXXX, nothing else", () => {
  assert.equal(
    controlsEscaped("a\r\nb\u0000\u001b[31m\u007f\u2028\u2029"),
    "a\\u000d\\u000ab\\u0000\\u001b[31m\\u007f\\u2028\\u2029",
  );
  assert.equal(controlsEscaped('plain "text" ü \t'), 'plain "text" ü \\u0009');
});
