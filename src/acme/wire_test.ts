import assert from "node:assert/strict";
import fc from "fast-check";
import { AcmeError, PROBLEM } from "./error.ts";
import { parseAccount, parseAuthorization, parseDirectory, parseOrder } from "./wire.ts";

const BASE = new URL("https://ca.test/dir");
const URL_A = "https://ca.test/a";

/** JSON-ish values shaped like ACME objects: the right keys with any values, or anything. */
const field = fc.oneof(
  fc.constant(URL_A),
  fc.constant("http://ca.test/plain"),
  fc.constantFrom("pending", "valid", "ready", "invalid", "dns", "http-01"),
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(
    fc.oneof(
      fc.constant(URL_A),
      fc.integer(),
      fc.record({ type: fc.constant("dns"), value: fc.string() }),
    ),
    { maxLength: 3 },
  ),
  fc.record({ type: fc.string(), detail: fc.string(), status: fc.integer() }),
);
const acmeLike = fc.dictionary(
  fc.constantFrom(
    "status",
    "identifiers",
    "authorizations",
    "finalize",
    "certificate",
    "expires",
    "error",
    "identifier",
    "challenges",
    "wildcard",
    "newNonce",
    "newAccount",
    "newOrder",
    "meta",
    "contact",
    "url",
    "type",
    "token",
  ),
  field,
);
const anything = fc.oneof(acmeLike, fc.jsonValue());

Deno.test("the wire parsers answer any JSON value with a result or a badResponse AcmeError", () => {
  const parsers = [
    (v: unknown) => parseDirectory(v, BASE, 200),
    (v: unknown) => parseOrder(v, { url: URL_A, base: BASE, status: 200 }),
    (v: unknown) => parseAuthorization(v, { url: URL_A, base: BASE, status: 200 }),
    (v: unknown) => parseAccount(v, { url: URL_A, base: BASE, status: 200 }),
  ];
  fc.assert(
    fc.property(anything, (value) => {
      for (const parse of parsers) {
        try {
          parse(value);
        } catch (e) {
          assert.ok(e instanceof AcmeError, `not an AcmeError: ${e}`);
          assert.equal(e.type, PROBLEM.badResponse);
          assert.doesNotMatch(e.message, /\n/);
        }
      }
    }),
    { numRuns: 3000 },
  );
});

Deno.test("parseAuthorization() reads a valid authorization and lower-cases its name", () => {
  const a = parseAuthorization({
    status: "pending",
    identifier: { type: "dns", value: "Web.Example.Test" },
    challenges: [{ type: "http-01", url: URL_A, status: "pending", token: "abc_-1" }, {
      type: "dns-account-01",
      url: URL_A,
      status: "pending",
    }],
  }, { url: URL_A, base: BASE, status: 200 });
  assert.equal(a.name, "web.example.test");
  assert.equal(a.wildcard, false);
  assert.deepEqual(a.challenges.map((c) => [c.type, c.token]), [["http-01", "abc_-1"], [
    "dns-account-01",
    undefined,
  ]]);
});

Deno.test("parseAuthorization() refuses a token that is not base64url and too many challenges", () => {
  const authz = (challenges: unknown[]) => ({
    status: "pending",
    identifier: { type: "dns", value: "a.test" },
    challenges,
  });
  const o = { url: URL_A, base: BASE, status: 200 };
  const bad = { type: "http-01", url: URL_A, status: "pending", token: "../../etc" };
  assert.throws(() => parseAuthorization(authz([bad]), o), /"token" is not base64url/);
  const one = { type: "http-01", url: URL_A, status: "pending", token: "t" };
  assert.throws(() => parseAuthorization(authz(Array(17).fill(one)), o), /at most 16/);
});
