import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { FRAME, frame, testTls, until, withH2 } from "./_h2_testing.ts";
import type { Dispatch } from "./h2_frontend.ts";
import { CONTROL_FRAMES_MAX } from "./goaway_guard.ts";

const PING = 6;
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const noDispatch: Dispatch = () => assert.fail("no request in this test");

/**
 * A client (its own process, so that the server's timers run as they would) that floods PINGs
 * and never reads the ACKs (up to `limit`), then reads; resolves with how many it sent and
 * whether the server closed the connection within 5 s.
 */
async function pingFlood(port: number, limit: number): Promise<{ sent: number; closed: boolean }> {
  const code = `
    const conn = await Deno.connectTls({ hostname: "127.0.0.1", port: ${port},
      caCerts: [${JSON.stringify(testTls().caPem)}], alpnProtocols: ["h2"] });
    const ping = new Uint8Array([0, 0, 8, ${PING}, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const blob = new Uint8Array(ping.length * 1000);
    for (let i = 0; i < 1000; i++) blob.set(ping, i * ping.length);
    let sent = 0;
    try {
      await conn.write(new Uint8Array([${[...PREFACE, ...frame(FRAME.SETTINGS, 0, 0)]}]));
      while (sent < ${limit}) { await conn.write(blob); sent += 1000; }
    } catch { /* closed by the server */ }
    // Then reads (the ACKs, if any) until the server closes, for at most 5 s.
    const buf = new Uint8Array(65536);
    const end = Date.now() + 5000;
    let closed = false;
    setTimeout(() => { console.log(sent, closed); Deno.exit(0); }, 5000);
    try { while (Date.now() < end && (await conn.read(buf)) !== null); closed = true; } catch { closed = true; }
    console.log(sent, closed);
    Deno.exit(0);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const [sent, closed] = new TextDecoder().decode(out.stdout).trim().split(" ");
  return { sent: Number(sent), closed: closed === "true" };
}

Deno.test("H2Frontend closes a PING flood from a client that never reads its ACKs, with bounded memory", async () => {
  await withH2({ dispatch: noDispatch }, async (port, h2) => {
    const rssBefore = Deno.memoryUsage().rss;
    const { sent, closed } = await pingFlood(port, 3_000_000);
    const grownMb = (Deno.memoryUsage().rss - rssBefore) / 1e6;
    assert.ok(sent >= CONTROL_FRAMES_MAX, `the client sent ${sent} PINGs`);
    assert.ok(closed, "the server did not close the connection");
    // Without a cut-off the session queued an ACK per PING: +500 MB for 2 million of them.
    assert.ok(grownMb < 150, `the server grew by ${grownMb.toFixed(0)} MB`);
    // The client may see the close before the server's session runs its own close handler.
    await until(() => h2.sessions === 0, "the server's session gone");
  });
});
