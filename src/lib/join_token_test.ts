import assert from "node:assert/strict";
import { formatJoinToken, newTokenId, parseJoinToken } from "./join_token.ts";

const PIN = `sha256:${"ab".repeat(32)}`;
const SECRET = "A".repeat(16) + "b-_9".repeat(4);

Deno.test("parseJoinToken() reads back what formatJoinToken() writes, spaces and newline dropped", () => {
  const t = { id: "abc123", secret: SECRET, pin: PIN };
  assert.deepEqual(parseJoinToken(` ${formatJoinToken(t)}\n`), t);
});

Deno.test("parseJoinToken() says what is wrong without quoting the secret", () => {
  const cases: [string, RegExp][] = [
    [`abc123.${SECRET}`, /no ::sha256/],
    [`abc123.${SECRET}::sha256:xyz`, /CA pin/],
    [`ABC123.${SECRET}::${PIN}`, /id before the dot/],
    [`abc123::${PIN}`, /secret after the dot/],
    [`abc123.${SECRET}x::${PIN}`, /secret after the dot/],
  ];
  for (const [text, want] of cases) {
    assert.throws(() => parseJoinToken(text), (e: Error) => {
      assert.match(e.message, want);
      assert.ok(!e.message.includes(SECRET));
      return true;
    });
  }
});

Deno.test("newTokenId() gives 6 of a-z0-9 from the random source", () => {
  assert.equal(newTokenId(() => 0), "aaaaaa");
  assert.equal(newTokenId((n) => n - 1), "999999");
});
