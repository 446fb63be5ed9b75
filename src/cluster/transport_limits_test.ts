/**
 * The transport's limits on peers that are not authenticated members: anonymous TLS connections
 * (their own connection limits, lifetime, one request at a time), the frame limit before the
 * hello and for anonymous peers, and bounded log lines under a flood.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { RawTls, type TestCa, testCa } from "./_tls_testing.ts";
import {
  ANONYMOUS_CONNECTIONS_MAX,
  ANONYMOUS_CONNECTIONS_PER_HOST_MAX,
  HANDSHAKES_MAX,
  HANDSHAKES_PER_HOST_MAX,
  type Hello,
  INBOUND_CONNECTIONS_MAX,
  type Peer,
  PRE_AUTH_FRAME_BYTES_MAX,
  PROTOCOL_VERSION,
  Transport,
  type TransportOptions,
} from "./transport.ts";
import { waitFor } from "../../test/wait.ts";

interface Node {
  t: Transport;
  addr: string;
  reqs: { from: Peer; body: unknown }[];
  logs: string[];
}

/** A transport with a certificate for `name` from `ca` (null: plain TCP); echoes requests. */
async function node(
  ca: TestCa | null,
  name: string,
  nodeId: number,
  o: Partial<TransportOptions> = {},
): Promise<Node> {
  const id: Hello = { clusterId: "c1", nodeId, address: "" };
  const creds = ca?.issue(name);
  const n: Node = { t: null as unknown as Transport, addr: "", reqs: [], logs: [] };
  n.t = new Transport({
    listen: { host: "127.0.0.1", port: 0 },
    self: () => id,
    onMessage: () => {},
    onRequest: (from, body) => {
      n.reqs.push({ from, body });
      return Promise.resolve({ echo: body });
    },
    log: (line) => n.logs.push(line),
    backoffMsMin: 10,
    backoffMsMax: 50,
    ...(creds === undefined ? {} : {
      tls: { credentials: () => creds, verifyPeer: () => null },
    }),
    ...o,
  });
  await n.t.start();
  n.addr = `${n.t.address.host}:${n.t.address.port}`;
  id.address = n.addr;
  return n;
}

const hello = { k: "hello", v: PROTOCOL_VERSION, clusterId: "", nodeId: 0, address: "" };

/** A 4-byte frame header announcing a body of `len` bytes. */
function header(len: number): Uint8Array {
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, len);
  return h;
}

/** Opens `n` anonymous connections from `hosts` in turn, each sending a hello; settled ones. */
async function anonymousFlood(port: number, n: number, hosts: string[]): Promise<RawTls[]> {
  const out: RawTls[] = [];
  while (out.length < n) {
    // At most 8 handshakes at once per source IP (below HANDSHAKES_PER_HOST_MAX).
    const size = Math.min(64, n - out.length, 8 * hosts.length);
    const batch = Array.from({ length: size }, (_, i) => {
      const raw = new RawTls(port, { localAddress: hosts[(out.length + i) % hosts.length]! });
      raw.secure.then((ok) => ok && raw.frame(hello));
      return raw;
    });
    // Settled: welcomed (held open) or closed by the listener.
    await Promise.all(
      batch.map((r) => waitFor("welcome or close", () => r.closed || r.frames.length > 0)),
    );
    out.push(...batch);
  }
  return out;
}

Deno.test("Transport with tls: a flood of anonymous connections past INBOUND_CONNECTIONS_MAX does not keep a member out", async () => {
  const c = testCa();
  const a = await node(c, "alpha", 1);
  const b = await node(c, "beta", 2);
  // From many source IPs, so the per-host limit alone would not turn them away.
  const hosts = Array.from({ length: 200 }, (_, i) => `127.0.${1 + (i >> 7)}.${10 + (i & 127)}`);
  const flood = await anonymousFlood(b.t.address.port, INBOUND_CONNECTIONS_MAX + 8, hosts);
  const held = flood.filter((r) => !r.closed);
  assert.equal(held.length, ANONYMOUS_CONNECTIONS_MAX);
  assert.ok(held.every((r) => (r.frames[0] as { k: string }).k === "welcome"));
  const got = await a.t.request(b.addr, { t: "echo", n: 1 }, { timeoutMs: 5000 });
  assert.deepEqual(got, { echo: { t: "echo", n: 1 } });
  assert.equal(b.reqs.at(-1)?.from.cert?.node, "alpha");
  await Promise.all(flood.map((r) => r.close()));
  await Promise.all([a.t.close(), b.t.close()]);
});

/** Opens `n` TCP connections from `hosts` in turn that never start their TLS handshake. */
async function silent(port: number, n: number, hosts: string[]): Promise<Socket[]> {
  const out: Socket[] = [];
  while (out.length < n) {
    // 64 at a time: a burst past the listen backlog would wait for SYN retries.
    const batch = Array.from({ length: Math.min(64, n - out.length) }, (_, i) => {
      const localAddress = hosts[(out.length + i) % hosts.length]!;
      const s = connect({ host: "127.0.0.1", port, localAddress });
      s.on("error", () => {});
      return s;
    });
    await Promise.all(batch.map((s) => new Promise((r) => s.once("connect", r))));
    out.push(...batch);
  }
  return out;
}

Deno.test("Transport with tls: silent TLS handshakes past INBOUND_CONNECTIONS_MAX do not keep a member out", async () => {
  const c = testCa();
  const a = await node(c, "alpha", 1);
  const b = await node(c, "beta", 2);
  const hosts = Array.from({ length: 200 }, (_, i) => `127.0.${1 + (i >> 7)}.${10 + (i & 127)}`);
  const flood = await silent(b.t.address.port, INBOUND_CONNECTIONS_MAX + 8, hosts);
  // The oldest handshakes were closed to make room, with one line for all.
  assert.deepEqual(b.logs.map((l) => l.replace(/127\.0\.\d+\.\d+:\d+/, "IP:PORT")), [
    `cluster: closed connection from IP:PORT: closed for a newer one: ${HANDSHAKES_MAX} TLS ` +
    "handshakes in progress",
  ]);
  const got = await a.t.request(b.addr, { t: "echo" }, { timeoutMs: 5000 });
  assert.deepEqual(got, { echo: { t: "echo" } });
  for (const s of flood) s.destroy();
  await Promise.all([a.t.close(), b.t.close()]);
});

Deno.test("Transport with tls allows HANDSHAKES_PER_HOST_MAX handshakes in progress per source IP, not counting finished ones", async () => {
  const c = testCa();
  const b = await node(c, "beta", 2);
  // Finished handshakes (members holding connections, opened one after the other) do not count.
  const members: RawTls[] = [];
  for (let i = 0; i < HANDSHAKES_PER_HOST_MAX + 4; i++) {
    const m = new RawTls(b.t.address.port, { localAddress: "127.0.0.5", creds: c.issue(`m${i}`) });
    members.push(m);
    assert.equal(await m.secure, true);
    m.frame(hello);
    await waitFor("the welcome", () => m.frames.length === 1);
  }
  assert.ok(members.every((m) => !m.closed));
  const held = await silent(b.t.address.port, HANDSHAKES_PER_HOST_MAX, ["127.0.0.5"]);
  const extra = connect({ host: "127.0.0.1", port: b.t.address.port, localAddress: "127.0.0.5" });
  extra.on("error", () => {});
  await new Promise((r) => extra.once("close", r));
  assert.deepEqual(b.logs.map((l) => l.replace(/:\d+:/, ":PORT:")), [
    `cluster: closed connection from 127.0.0.5:PORT: ${HANDSHAKES_PER_HOST_MAX} TLS handshakes ` +
    "already in progress from 127.0.0.5",
  ]);
  // Another source IP is not affected.
  const other = new RawTls(b.t.address.port, { localAddress: "127.0.0.6" });
  assert.equal(await other.secure, true);
  for (const s of held) s.destroy();
  await Promise.all([...members, other].map((m) => m.close()));
  await b.t.close();
});

Deno.test("Transport with tls admits ANONYMOUS_CONNECTIONS_PER_HOST_MAX anonymous connections per source IP", async () => {
  const c = testCa();
  const b = await node(c, "beta", 2);
  const one = await anonymousFlood(b.t.address.port, 20, ["127.0.0.7"]);
  assert.equal(one.filter((r) => !r.closed).length, ANONYMOUS_CONNECTIONS_PER_HOST_MAX);
  // Another source IP still gets in; a closed one frees its slot.
  const other = await anonymousFlood(b.t.address.port, 1, ["127.0.0.8"]);
  assert.equal(other[0]!.closed, false);
  await one.find((r) => !r.closed)!.close();
  await waitFor("a slot for 127.0.0.7 again", async () => {
    const again = await anonymousFlood(b.t.address.port, 1, ["127.0.0.7"]);
    return !again[0]!.closed;
  });
  await Promise.all([...one, ...other].map((r) => r.close()));
  await b.t.close();
});

Deno.test("Transport with tls closes an anonymous connection after anonymousLifetimeMs, busy or not", async () => {
  const c = testCa();
  const b = await node(c, "beta", 2, { anonymousLifetimeMs: 300 });
  const a = await node(c, "alpha", 1, { anonymousLifetimeMs: 300 });
  const raw = new RawTls(b.t.address.port);
  raw.frame(hello);
  await waitFor("the welcome", () => raw.frames.length === 1);
  // It keeps asking; it is closed all the same.
  const ask = setInterval(() => raw.frame({ k: "req", id: 1, b: { t: "pki.ca" } }), 50);
  await waitFor("the connection closed", () => raw.closed);
  clearInterval(ask);
  assert.ok(b.reqs.length > 0);
  assert.deepEqual(
    b.logs.map((l) => l.replace(/:\d+:/, ":PORT:")),
    [
      "cluster: closed connection from 127.0.0.1:PORT: connection without a certificate open " +
      "for 300 ms",
    ],
  );
  // A member's connection is not: its requests keep working past that time.
  await a.t.request(b.addr, { t: "echo" });
  const before = b.logs.length;
  await new Promise((r) => setTimeout(r, 600));
  await a.t.request(b.addr, { t: "echo" });
  assert.equal(b.logs.length, before, b.logs.join("\n"));
  await raw.close();
  await Promise.all([a.t.close(), b.t.close()]);
});

Deno.test("Transport with tls answers a second concurrent anonymous request busy", async () => {
  const c = testCa();
  let release = () => {};
  const held = new Promise<void>((r) => release = r);
  const b = await node(c, "beta", 2, {
    onRequest: async (_from, body) => {
      if ((body as { t: string }).t === "pki.enroll") await held;
      return { done: (body as { t: string }).t };
    },
  });
  const raw = new RawTls(b.t.address.port);
  raw.frame(hello);
  await waitFor("the welcome", () => raw.frames.length === 1);
  raw.frame({ k: "req", id: 1, b: { t: "pki.enroll" } });
  raw.frame({ k: "req", id: 2, b: { t: "pki.ca" } });
  await waitFor("the busy answer", () => raw.frames.length === 2);
  assert.deepEqual(raw.frames[1], {
    k: "res",
    id: 2,
    err: "busy: 1 request in flight",
  });
  release();
  await waitFor("the first answer", () => raw.frames.length === 3);
  assert.deepEqual(raw.frames[2], { k: "res", id: 1, b: { done: "pki.enroll" } });
  // Once it is answered, the next request is served.
  raw.frame({ k: "req", id: 3, b: { t: "pki.ca" } });
  await waitFor("the third answer", () => raw.frames.length === 4);
  assert.deepEqual(raw.frames[3], { k: "res", id: 3, b: { done: "pki.ca" } });
  await raw.close();
  await b.t.close();
});

Deno.test("Transport refuses a frame over PRE_AUTH_FRAME_BYTES_MAX before the hello and from an anonymous peer, by its header", async (t) => {
  const c = testCa();
  const b = await node(c, "beta", 2);
  const plain = await node(null, "plain", 3);
  const big = 8 * 1024 * 1024;
  const refused = `frame of ${big} bytes exceeds the limit of ${PRE_AUTH_FRAME_BYTES_MAX} bytes`;
  for (const afterHello of [false, true]) {
    await t.step(`tls, anonymous, ${afterHello ? "after" : "before"} the hello`, async () => {
      b.logs.length = 0;
      // From another source IP each time (lines are limited per IP and reason).
      const from = afterHello ? "127.0.0.21" : "127.0.0.20";
      const raw = new RawTls(b.t.address.port, { localAddress: from });
      if (afterHello) {
        raw.frame(hello);
        await waitFor("the welcome", () => raw.frames.length === 1);
      }
      // Only the header: the listener refuses it by the announced size, not by a timeout.
      raw.raw(header(big));
      await waitFor("the connection closed", () => raw.closed);
      assert.deepEqual(
        b.logs.map((l) => l.replace(/:\d+:/, ":PORT:")),
        [`cluster: closed connection from ${from}:PORT: ${refused}`],
      );
    });
  }
  await t.step("plain TCP, before the hello", async () => {
    const s = connect({ host: "127.0.0.1", port: plain.t.address.port });
    s.on("error", () => {});
    s.on("connect", () => s.write(header(big)));
    await new Promise((r) => s.once("close", r));
    assert.ok(plain.logs.some((l) => l.endsWith(refused)), plain.logs.join("\n"));
  });
  await t.step("a member after its hello still sends frames up to frameBytesMax", async () => {
    const a = await node(c, "alpha", 1);
    const body = new Uint8Array(PRE_AUTH_FRAME_BYTES_MAX * 4);
    const got = await a.t.request(b.addr, { t: "echo", body }) as { echo: { body: Uint8Array } };
    assert.equal(got.echo.body.byteLength, body.byteLength);
    await a.t.close();
  });
  await Promise.all([b.t.close(), plain.t.close()]);
});

Deno.test("Transport logs a bounded number of lines for a flood of refused anonymous connections", async () => {
  const c = testCa();
  const b = await node(c, "beta", 2);
  // Each asks for something an anonymous peer may not: every connection is closed.
  for (let i = 0; i < 4; i++) {
    const refused = Array.from({ length: 8 }, () => new RawTls(b.t.address.port));
    for (const raw of refused) {
      raw.frame(hello);
      raw.frame({ k: "req", id: 1, b: { t: "propose" } });
    }
    await waitFor("all closed", () => refused.every((r) => r.closed));
  }
  // And more than ANONYMOUS_CONNECTIONS_PER_HOST_MAX held open from one source IP.
  const over = await anonymousFlood(b.t.address.port, 30, ["127.0.0.1"]);
  assert.equal(over.filter((r) => r.closed).length, 30 - ANONYMOUS_CONNECTIONS_PER_HOST_MAX);
  const lines = b.logs.map((l) => l.replace(/:\d+:/, ":PORT:"));
  assert.deepEqual(lines, [
    'cluster: closed connection from 127.0.0.1:PORT: request "propose" from a peer without a ' +
    "certificate",
    `cluster: closed connection from 127.0.0.1:PORT: ${ANONYMOUS_CONNECTIONS_PER_HOST_MAX} ` +
    "connections without a certificate already open from 127.0.0.1",
  ]);
  await Promise.all(over.map((r) => r.close()));
  await b.t.close();
});
