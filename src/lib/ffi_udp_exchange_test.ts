import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { type UdpExchange, udpExchangeOf } from "./ffi_udp_exchange.ts";

function ffiExchange(): UdpExchange {
  const ex = udpExchangeOf();
  assert.ok("exchange" in ex, `FFI unavailable: ${"why" in ex ? ex.why : ""}`);
  return ex.exchange;
}

/** A node:dgram socket on loopback that answers each datagram with `answer(data)` (null: none). */
async function server(
  answer: (data: Uint8Array) => Uint8Array | null,
  type: "udp4" | "udp6" = "udp4",
): Promise<{ port: number; got: Uint8Array[]; close: () => Promise<void> }> {
  const sock: Socket = createSocket(type);
  const got: Uint8Array[] = [];
  sock.on("message", (m, r) => {
    got.push(new Uint8Array(m));
    const a = answer(new Uint8Array(m));
    if (a !== null) sock.send(a, r.port, r.address);
  });
  await new Promise<void>((ok) => sock.bind(0, type === "udp4" ? "127.0.0.1" : "::1", ok));
  return {
    port: sock.address().port,
    got,
    close: () => new Promise<void>((ok) => sock.close(ok)),
  };
}

/** A loopback UDP port nobody listens on (src/health/_testing.ts says why this range). */
async function closedPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const sock = createSocket("udp4");
    const bound = await new Promise<boolean>((ok) => {
      sock.once("error", () => ok(false));
      sock.bind(port, "127.0.0.1", () => ok(true));
    });
    await new Promise<void>((r) => sock.close(() => r()));
    if (bound) return port;
  }
}

Deno.test("udpExchangeOf().exchange() returns the peer's first reply", async () => {
  const s = await server((d) => new Uint8Array([...new TextEncoder().encode("re:"), ...d]));
  try {
    const a = await ffiExchange()(
      { address: "127.0.0.1", port: s.port },
      new TextEncoder().encode("ping"),
      AbortSignal.timeout(5000),
    );
    assert.equal(a.kind, "reply");
    assert.equal(new TextDecoder().decode(a.kind === "reply" ? a.data : undefined), "re:ping");
  } finally {
    await s.close();
  }
});

Deno.test("udpExchangeOf().exchange() sends an empty datagram and works over IPv6", async () => {
  const s = await server(() => new Uint8Array([1, 2]), "udp6");
  try {
    const a = await ffiExchange()(
      { address: "::1", port: s.port },
      new Uint8Array(0),
      AbortSignal.timeout(5000),
    );
    assert.deepEqual(a, { kind: "reply", data: new Uint8Array([1, 2]) });
    assert.deepEqual(s.got, [new Uint8Array(0)]);
  } finally {
    await s.close();
  }
});

Deno.test("udpExchangeOf().exchange() sees a closed port's ICMP refusal as ECONNREFUSED", async () => {
  const port = await closedPort();
  const a = await ffiExchange()(
    { address: "127.0.0.1", port },
    new TextEncoder().encode("ping"),
    AbortSignal.timeout(5000),
  );
  assert.equal(a.kind, "error");
  assert.equal(a.kind === "error" ? a.code : "", "ECONNREFUSED");
});

Deno.test("udpExchangeOf().exchange() rejects with the abort reason when the peer stays silent", async () => {
  const s = await server(() => null);
  try {
    const ac = new AbortController();
    const p = ffiExchange()({ address: "127.0.0.1", port: s.port }, new Uint8Array([7]), ac.signal);
    while (s.got.length === 0) await new Promise((r) => setTimeout(r, 5));
    ac.abort(new Error("give up"));
    await assert.rejects(p, /give up/);
  } finally {
    await s.close();
  }
});

Deno.test("udpExchangeOf().exchange() refuses an address that is not an IP literal", async () => {
  await assert.rejects(
    ffiExchange()({ address: "localhost", port: 53 }, new Uint8Array(0), AbortSignal.timeout(1000)),
    /not an IP address/,
  );
});
