/**
 * DnsServer.drain(): the graceful shutdown of SIGTERM (README "Shutdown and reload").
 */
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { createConnection } from "node:net";
import type { HostPort } from "../lib/host_port.ts";
import { decode, filledStore, heldRecursor, query, testServer, udpExchange } from "./_testing.ts";

/** Whether a reply to `message` comes within `ms` (the absence of one needs some wait). */
function answeredWithin(to: HostPort, message: Uint8Array, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    const done = (answered: boolean) => {
      clearTimeout(timer);
      socket.close();
      resolve(answered);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.once("message", () => done(true));
    socket.send(message, to.port, to.host);
  });
}

/** Whether a TCP connection to `to` is refused. */
function refused(to: HostPort): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: to.host, port: to.port });
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

Deno.test("DnsServer.drain() closes idle TCP connections, takes no new query, and lets a forwarded one get its answer", async () => {
  const recursor = await heldRecursor();
  const { store } = filledStore([{ name: "n1", address: "192.168.1.1" }], [
    { id: "web1", service: "web" },
  ]);
  const s = testServer(store, { recursors: [recursor.address], forward: { timeoutMs: 60_000 } });
  await s.start();
  try {
    const idle = createConnection({ host: "127.0.0.1", port: s.address.tcp.port });
    idle.on("error", () => {});
    await new Promise((resolve) => idle.once("connect", resolve));
    const idleClosed = new Promise<void>((resolve) => idle.once("close", () => resolve()));
    const answer = udpExchange(s.address.udp, query("example.com", "A", { id: 7 }));
    await recursor.arrived;
    let drained: number | null = null;
    const draining = s.drain(60_000).then((n) => drained = n);
    await idleClosed; // at once: the forwarded query is still held meanwhile
    assert.equal(await refused(s.address.tcp), true, "the TCP listener is closed");
    assert.equal(
      await answeredWithin(s.address.udp, query("web.service.berth", "A"), 500),
      false,
      "a query that came after the drain began is not answered",
    );
    assert.equal(drained, null, "the drain waits for the forwarded query");
    recursor.release();
    const r = decode(await answer);
    assert.equal(r.id, 7);
    assert.equal(r.rcode, "NOERROR");
    await draining;
    assert.equal(drained, 0);
  } finally {
    await s.close();
    await recursor.close();
    store.close();
  }
});

Deno.test("DnsServer.drain() cuts a forwarded query stuck past the timeout and counts it", async () => {
  const recursor = await heldRecursor(); // never released
  const { store } = filledStore([{ name: "n1", address: "192.168.1.1" }], []);
  const s = testServer(store, { recursors: [recursor.address], forward: { timeoutMs: 60_000 } });
  await s.start();
  try {
    const lost = udpExchange(s.address.udp, query("example.com", "A")).catch(() => null);
    await recursor.arrived;
    assert.equal(await s.drain(100), 1);
    assert.equal(await lost, null, "no answer");
  } finally {
    await s.close();
    await recursor.close();
    store.close();
  }
});
