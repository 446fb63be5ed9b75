import assert from "node:assert/strict";
import net from "node:net";
import { HttpsListener } from "./https_listener.ts";
import { servedCert } from "./_testing.ts";

/**
 * A listener whose TLS-ALPN-01 hook claims every connection and answers none (a responder
 * stuck on a client that never finishes): what is left is the listener's own accounting.
 */
async function withStuckHook(
  over: {
    acmeAnswersMax?: number;
    acmeAnswersPerIpMax?: number;
    acmeAnswerTimeoutMs?: number;
    handshakesPerIpMax?: number;
  },
  fn: (port: number, l: HttpsListener, answered: net.Socket[]) => Promise<void>,
): Promise<void> {
  const answered: net.Socket[] = [];
  const l = new HttpsListener({
    listen: { host: "127.0.0.1", port: 0 },
    certs: () => [servedCert(["a.test"])],
    admit: () => true,
    serveHttp1: (s) => s.end(),
    log: () => {},
    acmeTlsAlpn: {
      pending: () => true,
      claims: () => true,
      answer: (socket) => {
        answered.push(socket);
        // Reads, as the responder does, and closes when the client goes.
        socket.on("end", () => socket.destroy());
        socket.resume();
      },
    },
    ...over,
  });
  await l.start();
  try {
    await fn(l.address.port, l, answered);
  } finally {
    for (const s of answered) s.destroy();
    await l.close();
  }
}

/** Connects and sends one byte (the stuck hook claims it); resolves with the socket and its close. */
async function claimed(port: number): Promise<{ socket: net.Socket; closed: () => boolean }> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  let closed = false;
  socket.once("close", () => closed = true);
  await new Promise((r) => socket.once("connect", r));
  socket.write("x");
  return { socket, closed: () => closed };
}

async function waitUntil(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok());
}

Deno.test("HttpsListener counts acme-tls/1 connections as handshakes until the answer ends, and caps them per address", async () => {
  await withStuckHook(
    { acmeAnswersPerIpMax: 2, acmeAnswerTimeoutMs: 60_000 },
    async (port, l, answered) => {
      const a = await claimed(port);
      const b = await claimed(port);
      await waitUntil(() => answered.length === 2);
      assert.equal(l.handshaking, 2, "answering connections still count (admit, per-IP limit)");
      const c = await claimed(port);
      await waitUntil(c.closed); // past acmeAnswersPerIpMax: closed at once, not answered
      assert.equal(answered.length, 2);
      a.socket.destroy();
      await waitUntil(() => l.handshaking === 1);
      const d = await claimed(port);
      await waitUntil(() => answered.length === 3);
      b.socket.destroy();
      d.socket.destroy();
      await waitUntil(() => l.handshaking === 0);
    },
  );
});

Deno.test("HttpsListener caps acme-tls/1 answers in all (acmeAnswersMax)", async () => {
  await withStuckHook(
    { acmeAnswersMax: 1, acmeAnswerTimeoutMs: 60_000 },
    async (port, _l, answered) => {
      const a = await claimed(port);
      await waitUntil(() => answered.length === 1);
      const b = await claimed(port);
      await waitUntil(b.closed);
      assert.equal(answered.length, 1);
      a.socket.destroy();
    },
  );
});

Deno.test("HttpsListener closes an acme-tls/1 answer that outlasts acmeAnswerTimeoutMs", async () => {
  await withStuckHook({ acmeAnswerTimeoutMs: 100 }, async (port, l, answered) => {
    const a = await claimed(port);
    await waitUntil(() => answered.length === 1);
    await waitUntil(a.closed); // the hook never closes it: the listener does
    await waitUntil(() => l.handshaking === 0);
  });
});
