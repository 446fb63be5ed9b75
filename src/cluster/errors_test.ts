import assert from "node:assert/strict";
import {
  BusyError,
  ClosedError,
  type ClusterError,
  errorFromCode,
  NoLeaderError,
  NotLeaderError,
  RejectedError,
  TimeoutError,
  UnknownMemberError,
} from "./errors.ts";
import { RemoteError, Transport } from "./transport.ts";

Deno.test("errorFromCode() rebuilds each named error from its code", () => {
  const all: ClusterError[] = [
    new NoLeaderError("a"),
    new NotLeaderError("b"),
    new BusyError("c"),
    new TimeoutError("d"),
    new RejectedError("e"),
    UnknownMemberError.of("n9", ["n1", "n2"]),
    new ClosedError("g"),
  ];
  for (const e of all) {
    const back = errorFromCode(e.code, e.message)!;
    assert.equal(back.constructor, e.constructor);
    assert.equal(back.name, e.name);
    assert.equal(back.code, e.code);
    assert.equal(back.message, e.message);
  }
  assert.equal(errorFromCode("nonsense", "x"), undefined);
});

Deno.test("UnknownMemberError.of() names the members there are, and is a rejection", () => {
  const e = UnknownMemberError.of("n9", ["n1", "n2"]);
  assert.equal(e.message, "no member named n9; members: n1, n2");
  assert.ok(e instanceof RejectedError);
  assert.equal(UnknownMemberError.of("x", []).message, "no member named x; members: (none)");
});

Deno.test("Transport.request() carries a thrown error's code to the caller's RemoteError", async () => {
  const server = new Transport({
    listen: { host: "127.0.0.1", port: 0 },
    self: () => ({ clusterId: "", nodeId: 0, address: "127.0.0.1:1" }),
    onMessage: () => {},
    onRequest: (_from, body) =>
      Promise.reject(body === "coded" ? new RejectedError("too big") : new Error("plain")),
    log: () => {},
  });
  const client = new Transport({
    listen: { host: "127.0.0.2", port: 0 },
    self: () => ({ clusterId: "", nodeId: 0, address: "127.0.0.2:1" }),
    onMessage: () => {},
    onRequest: () => Promise.resolve(null),
    log: () => {},
  });
  await server.start();
  await client.start();
  try {
    const addr = `127.0.0.1:${server.address.port}`;
    const coded = await client.request(addr, "coded").catch((e) => e);
    assert.ok(coded instanceof RemoteError);
    assert.equal(coded.code, "rejected");
    assert.equal(coded.message, "too big");
    const plain = await client.request(addr, "plain").catch((e) => e);
    assert.ok(plain instanceof RemoteError);
    assert.equal(plain.code, undefined);
  } finally {
    await client.close();
    await server.close();
  }
});
