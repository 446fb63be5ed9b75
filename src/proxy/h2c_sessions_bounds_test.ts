/**
 * H2cSessions against instances that hold connections: one that accepts TCP and never sends
 * its SETTINGS (its sockets must be freed), and the cap on private sessions per target.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { type H2cSession, H2cSessions } from "./h2c_sessions.ts";
import type { Target } from "./balancer.ts";
import { silentServer, until } from "./_h2_testing.ts";

function target(port: number): Target {
  return { id: "a", address: "127.0.0.1", port, weight: 1, key: `a|127.0.0.1|${port}` };
}

function priv(client: object, n: number) {
  const header = `PROXY TCP4 198.51.100.${n} 127.0.0.1 40000 80\r\n`;
  return { conn: { key: header, header: new TextEncoder().encode(header) }, client };
}

Deno.test("H2cSessions: a session whose instance never sends SETTINGS times out and its connection closes", async () => {
  const server = await silentServer();
  const pool = new H2cSessions({ connectTimeoutMs: 100 });
  const t = target(server.port);
  try {
    const shared = await new Promise<H2cSession>((r) => pool.acquire(t, r));
    const own = await new Promise<H2cSession>((r) => pool.acquire(t, r, priv({}, 1)));
    await until(() => server.total() === 2, "both connections accepted");
    // TCP connected, but that is not a connection to an HTTP/2 instance yet.
    assert.equal(shared.connected, false);
    await until(() => shared.retired && own.retired, "both sessions time out");
    await until(() => server.open() === 0, "the instance's connections close");
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("H2cSessions: a silent instance's private sessions close with their client and with close()", async () => {
  const server = await silentServer();
  const pool = new H2cSessions({ connectTimeoutMs: 60_000 });
  const t = target(server.port);
  const clients = [new EventEmitter(), new EventEmitter(), new EventEmitter()];
  try {
    for (const [i, c] of clients.entries()) pool.acquire(t, () => {}, priv(c, i + 1));
    pool.acquire(t, () => {}); // and a shared one
    await until(() => server.open() === 4, "four connections accepted");
    clients[0]!.emit("close");
    await until(() => server.open() === 3, "the departed client's connection closes");
    pool.close();
    await until(() => server.open() === 0, "close() frees the others");
  } finally {
    pool.close();
    await server.close();
  }
});
