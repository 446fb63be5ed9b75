import assert from "node:assert/strict";
import { RejectedError } from "./errors.ts";
import { isJoinAnswer, parseRequest } from "./_requests.ts";

Deno.test("parseRequest() accepts each well-formed request", () => {
  assert.deepEqual(parseRequest({ t: "propose", id: "r1", cmd: { type: "noop" } }), {
    t: "propose",
    id: "r1",
    cmd: { type: "noop" },
  });
  assert.deepEqual(
    parseRequest({ t: "join", name: "n1", address: "127.0.0.1:8300", nonce: "x", extra: 1 }),
    { t: "join", name: "n1", address: "127.0.0.1:8300", nonce: "x" },
  );
  assert.deepEqual(
    parseRequest({ t: "join", name: "n1", address: "[::1]:8300", nonce: "x" }).t,
    "join",
  );
  assert.deepEqual(
    parseRequest({
      t: "join",
      name: "n1",
      address: "127.0.0.1:8300",
      nonce: "x",
      node: { address: "10.0.0.1", meta: { proxy: "true" } },
    }),
    {
      t: "join",
      name: "n1",
      address: "127.0.0.1:8300",
      nonce: "x",
      node: { address: "10.0.0.1", meta: { proxy: "true" } },
    },
  );
  assert.deepEqual(parseRequest({ t: "remove", id: 3 }), { t: "remove", id: 3 });
  assert.deepEqual(parseRequest({ t: "transfer", to: 2 }), { t: "transfer", to: 2 });
});

Deno.test("parseRequest() refuses malformed requests with a RejectedError naming the kind", () => {
  const cases: [unknown, RegExp][] = [
    [null, /unknown request/],
    [42, /unknown request/],
    [{ t: "what" }, /unknown request/],
    [{ t: "propose", id: 1, cmd: { type: "noop" } }, /malformed propose/],
    [{ t: "propose", id: "r", cmd: null }, /malformed propose/],
    [{ t: "propose", id: "r", cmd: { type: 5 } }, /malformed propose/],
    [{ t: "propose", id: "r".repeat(65), cmd: { type: "noop" } }, /malformed propose/],
    [{ t: "join", name: "-bad", address: "127.0.0.1:1", nonce: "x" }, /malformed join/],
    [{ t: "join", name: "ok", address: "example.com:1", nonce: "x" }, /malformed join/],
    // Addresses the former character-class pattern let through:
    [{ t: "join", name: "ok", address: "127.0.0.1:99999", nonce: "x" }, /malformed join/],
    [{ t: "join", name: "ok", address: "abc:1", nonce: "x" }, /malformed join/],
    [{ t: "join", name: "ok", address: "::1:8300", nonce: "x" }, /malformed join/],
    [{ t: "join", name: "ok", address: "1.2.3:80", nonce: "x" }, /malformed join/],
    [{ t: "join", name: "ok", address: "127.0.0.1:1", nonce: "x".repeat(65) }, /malformed join/],
    [{ t: "join", name: "ok", address: "127.0.0.1:1", nonce: "x", node: null }, /node.address/],
    [
      { t: "join", name: "ok", address: "127.0.0.1:1", nonce: "x", node: { address: "[::1]" } },
      /node.address/,
    ],
    [
      {
        t: "join",
        name: "ok",
        address: "127.0.0.1:1",
        nonce: "x",
        node: { address: "::1", meta: 5 },
      },
      /malformed join request: .*meta/,
    ],
    [{ t: "remove", id: "x" }, /malformed remove/],
    [{ t: "remove", id: 1.5 }, /malformed remove/],
    [{ t: "transfer" }, /malformed transfer/],
  ];
  for (const [body, re] of cases) {
    assert.throws(
      () => parseRequest(body),
      (e: Error) => e instanceof RejectedError && re.test(e.message),
    );
  }
});

Deno.test("isJoinAnswer() checks the answer's shape", () => {
  assert.equal(isJoinAnswer({ clusterId: "c", id: 2, members: [] }), true);
  assert.equal(isJoinAnswer({ clusterId: "c", id: "2", members: [] }), false);
  assert.equal(isJoinAnswer(null), false);
});
