import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import { GoawayFilter, GoawayGuard } from "./goaway_guard.ts";
import { FRAME, frame } from "./_h2_testing.ts";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

function goaway(lastStreamId: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(lastStreamId, 0);
  return frame(FRAME.GOAWAY, 0, 0, p);
}

/** Feeds `wire` in pieces of `size` bytes; what passes, and how many GOAWAYs were reported. */
function filtered(wire: Buffer, size: number): [Buffer, number] {
  let goaways = 0;
  const f = new GoawayFilter(() => goaways++);
  const out: Uint8Array[] = [];
  for (let i = 0; i < wire.length; i += size) out.push(f.scan(wire.subarray(i, i + size)));
  return [Buffer.concat(out), goaways];
}

Deno.test("GoawayFilter takes out GOAWAY frames and passes every other byte, however split", () => {
  const settings = frame(FRAME.SETTINGS, 0, 0);
  const data = frame(FRAME.DATA, 1, 1, Buffer.from("hello world"));
  const wire = Buffer.concat([PREFACE, settings, data, goaway(0), data, goaway(0)]);
  const expected = Buffer.concat([PREFACE, settings, data, data]);
  for (const size of [1, 2, 5, 9, 10, 17, 33, wire.length]) {
    const [out, goaways] = filtered(wire, size);
    assert.ok(out.equals(expected), `pieces of ${size}`);
    assert.equal(goaways, 2, `pieces of ${size}`);
  }
});

Deno.test("GoawayFilter hands a chunk without GOAWAY on as it is", () => {
  const f = new GoawayFilter(() => assert.fail("no GOAWAY here"));
  const chunk = Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]);
  assert.equal(f.scan(chunk), chunk);
});

/** A client socket that records what it is given; `write` returns `accept`. */
class FakeSocket extends Duplex {
  readonly writes: Buffer[] = [];
  accept = true;
  ended = false;

  override write(chunk: Uint8Array): boolean {
    this.writes.push(Buffer.from(chunk));
    return this.accept;
  }

  override end(cb?: () => void): this {
    this.ended = true;
    cb?.();
    return this;
  }

  override _read(): void {}

  setTimeout(): this {
    return this;
  }
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

Deno.test("GoawayGuard sends what the session writes within one turn to the socket in one write", async () => {
  const socket = new FakeSocket();
  const guard = new GoawayGuard(socket, () => {});
  guard.write(Buffer.from("headers "));
  guard.write(Buffer.from("data "));
  guard.write(Buffer.from("more"));
  assert.equal(socket.writes.length, 0);
  await turn();
  assert.deepEqual(socket.writes.map((b) => b.toString()), ["headers data more"]);
  guard.write(Buffer.from("next"));
  await turn();
  assert.deepEqual(socket.writes.map((b) => b.toString()), ["headers data more", "next"]);
});

Deno.test("GoawayGuard holds the session's writes while the socket's buffer is full, until it drains", async () => {
  const socket = new FakeSocket();
  socket.accept = false;
  const guard = new GoawayGuard(socket, () => {});
  guard.write(Buffer.from("a"));
  await turn(); // the socket takes "a" and says it is full
  let written = false;
  guard.write(Buffer.from("b"), () => written = true);
  await turn();
  await turn();
  assert.equal(written, false);
  assert.deepEqual(socket.writes.map((b) => b.toString()), ["a", "b"]);
  socket.accept = true;
  socket.emit("drain");
  await turn();
  assert.equal(written, true);
});

Deno.test("GoawayGuard writes what is queued before it ends the socket", async () => {
  const socket = new FakeSocket();
  const guard = new GoawayGuard(socket, () => {});
  guard.write(Buffer.from("last frame"));
  guard.end();
  await turn();
  assert.deepEqual(socket.writes.map((b) => b.toString()), ["last frame"]);
  assert.equal(socket.ended, true);
});

Deno.test("GoawayFilter stops passing input past its PING/SETTINGS budget and reports the flood", () => {
  let floods = 0;
  let now = 0;
  const f = new GoawayFilter({
    onGoaway: () => {},
    onFlood: () => floods++,
    controlFramesMax: 3,
    controlWindowMs: 1000,
    now: () => now,
  });
  const ping = frame(6, 0, 0, Buffer.alloc(8));
  const ack = frame(6, 1, 0, Buffer.alloc(8));
  assert.equal(f.scan(Buffer.concat([PREFACE, ping, ack, ack, ping])).length, 24 + 4 * 17);
  now = 1000; // a new window
  assert.equal(f.scan(Buffer.concat([ping, ping, ping])).length, 3 * 17);
  assert.equal(floods, 0);
  assert.equal(f.scan(Buffer.concat([frame(FRAME.SETTINGS, 0, 0), ping])).length, 0);
  assert.equal(floods, 1);
  assert.ok(f.flooded);
  assert.equal(f.scan(frame(FRAME.DATA, 0, 1, Buffer.from("x"))).length, 0);
});
