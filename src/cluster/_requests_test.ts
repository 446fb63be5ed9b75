import assert from "node:assert/strict";
import type { ClusterCore } from "./_core.ts";
import { NoLeaderError, RejectedError, TimeoutError } from "./errors.ts";
import { isJoinAnswer, parseRequest, request } from "./_requests.ts";
import { RemoteError, TransportError } from "./transport.ts";

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

Deno.test("request() turns every transport failure into a named cluster error", async () => {
  const cases: [Error, new (m: string) => Error, RegExp][] = [
    [
      new TransportError("connection refused", "unsent"),
      NoLeaderError,
      /cannot reach 10\.0\.0\.1:1/,
    ],
    [
      new TransportError("connection lost", "lost"),
      TimeoutError,
      /may or may not have taken effect/,
    ],
    [new TransportError("no answer", "timeout"), TimeoutError, /may or may not have taken effect/],
    [
      new RemoteError("disk I/O error"),
      TimeoutError,
      /10\.0\.0\.1:1 failed: disk I\/O error; it may/,
    ],
    [new RemoteError("name taken", "rejected"), RejectedError, /^name taken$/],
    [new RemoteError("odd", "no_such_code"), TimeoutError, /failed: odd/],
  ];
  for (const [thrown, want, re] of cases) {
    const core = {
      transport: { request: () => Promise.reject(thrown) },
    } as unknown as ClusterCore;
    const e = await request(core, { addr: "10.0.0.1:1", body: { t: "members" }, timeoutMs: 10 })
      .then(() => new Error("resolved"), (e: Error) => e);
    assert.ok(e instanceof want, `${thrown.message}: got ${e.name}: ${e.message}`);
    assert.match(e.message, re);
  }
});
