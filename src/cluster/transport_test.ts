import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { decodeBody, encodeBody, FrameReader, joinFrames } from "./_frame.ts";
import { UNCONNECTED_QUEUE_BYTES_MAX } from "./_transport_shared.ts";
import {
  type Hello,
  INBOUND_REQUESTS_MAX,
  PROTOCOL_VERSION,
  RemoteError,
  Transport,
  TransportError,
  type TransportOptions,
} from "./transport.ts";
import { waitFor } from "../../test/wait.ts";
import { unusedPort } from "../../test/ports.ts";

interface Node {
  t: Transport;
  id: Hello;
  addr: string;
  msgs: { from: Hello; body: unknown }[];
  logs: string[];
}

/** The host of an `ip:port` address: a peer's remote host when it dials from its listen host. */
function hostOf(addr: string): string {
  return addr.slice(0, addr.lastIndexOf(":"));
}

async function node(
  clusterId: string,
  nodeId: number,
  o: Partial<TransportOptions> & { host?: string; port?: number } = {},
): Promise<Node> {
  const n: Node = {
    t: null as unknown as Transport,
    id: { clusterId, nodeId, address: "" },
    addr: "",
    msgs: [],
    logs: [],
  };
  n.t = new Transport({
    listen: { host: o.host ?? "127.0.0.1", port: o.port ?? 0 },
    self: () => n.id,
    onMessage: (from, body) => n.msgs.push({ from, body }),
    onRequest: async (from, body) => {
      const b = body as { op: string };
      if (b.op === "fail") throw new Error("no such thing: " + from.nodeId);
      if (b.op === "hang") return await new Promise(() => {});
      return { echo: body, from };
    },
    log: (line) => n.logs.push(line),
    backoffMsMin: 10,
    backoffMsMax: 50,
    ...o,
  });
  await n.t.start();
  n.addr = `${n.t.address.host}:${n.t.address.port}`;
  n.id.address = n.addr;
  return n;
}

/** A raw client speaking (or mangling) the wire protocol. */
class Raw {
  readonly frames: unknown[] = [];
  closed = false;
  readonly #socket: Socket;
  readonly #done: Promise<void>;
  readonly #opened: Promise<void>;

  constructor(port: number) {
    const reader = new FrameReader(1 << 20);
    this.#socket = connect({ host: "127.0.0.1", port });
    this.#opened = new Promise((r) => this.#socket.once("connect", () => r()));
    this.#socket.on("error", () => {});
    this.#socket.on("data", (c: Uint8Array) => {
      reader.push(c, (b) => {
        this.frames.push(decodeBody(b));
        return true;
      });
    });
    this.#done = new Promise((r) =>
      this.#socket.on("close", () => {
        this.closed = true;
        r();
      })
    );
  }

  async localAddress(): Promise<string> {
    await this.#opened;
    return `${this.#socket.localAddress}:${this.#socket.localPort}`;
  }

  frame(v: unknown): void {
    this.#socket.write(joinFrames([encodeBody(v)]));
  }

  bytes(b: Uint8Array): void {
    this.#socket.write(b);
  }

  end(): void {
    this.#socket.end();
  }

  close(): Promise<void> {
    this.#socket.destroy();
    return this.#done;
  }
}

function hello(clusterId: string, v = PROTOCOL_VERSION) {
  return { k: "hello", v, clusterId, nodeId: 9, address: "127.0.0.1:1" };
}

Deno.test("Transport.send() delivers 1000 messages each way, in order, Uint8Array intact", async () => {
  const a = await node("c1", 1);
  const b = await node("c1", 2, { host: "127.0.0.2" });
  const payload = (i: number) => new Uint8Array([i & 255, (i >> 8) & 255, 7, 7, 7]);
  for (let i = 0; i < 1000; i++) {
    assert.equal(a.t.send(b.addr, { i, data: payload(i) }), true);
    assert.equal(b.t.send(a.addr, { i, data: payload(i) }), true);
  }
  await waitFor("1000 messages on each side", () => a.msgs.length >= 1000 && b.msgs.length >= 1000);
  for (const [n, sender] of [[a, b], [b, a]] as const) {
    assert.equal(n.msgs.length, 1000);
    n.msgs.forEach((m, i) => {
      const body = m.body as { i: number; data: Uint8Array };
      assert.equal(body.i, i);
      assert.equal(Object.getPrototypeOf(body.data), Uint8Array.prototype);
      assert.deepEqual(body.data, payload(i));
      assert.deepEqual(m.from, { ...sender.id, remoteHost: hostOf(sender.addr) });
    });
  }
  assert.deepEqual(a.t.connected().sort(), [b.addr]);
  assert.deepEqual(a.logs, []);
  assert.deepEqual(b.logs, []);
  await a.t.close();
  await b.t.close();
});

Deno.test("Transport.request() returns the handler's value and rejects with its error", async () => {
  const a = await node("c1", 1);
  const b = await node("c1", 2);
  const bin = new Uint8Array([1, 2, 3]);
  const got = await a.t.request(b.addr, { op: "echo", bin }) as {
    echo: { bin: Uint8Array };
    from: Hello;
  };
  assert.deepEqual(got.echo.bin, bin);
  assert.equal(Object.getPrototypeOf(got.echo.bin), Uint8Array.prototype);
  assert.deepEqual(got.from, { ...a.id, remoteHost: hostOf(a.addr) });
  await assert.rejects(
    a.t.request(b.addr, { op: "fail" }),
    (e: Error) => e instanceof RemoteError && e.message === "no such thing: 1",
  );
  const many = await Promise.all(
    Array.from({ length: 200 }, (_, i) => a.t.request(b.addr, { op: "echo", i })),
  );
  many.forEach((r, i) => assert.equal((r as { echo: { i: number } }).echo.i, i));
  await a.t.close();
  await b.t.close();
});

Deno.test("Transport.request() carries frames larger than one write batch both ways", async () => {
  const a = await node("c1", 1);
  const b = await node("c1", 2);
  const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
  const small = Array.from({ length: 50 }, (_, i) => a.t.request(b.addr, { op: "echo", i }));
  const got = await a.t.request(b.addr, { op: "echo", big }) as { echo: { big: Uint8Array } };
  assert.deepEqual(got.echo.big, big);
  for (const [i, r] of (await Promise.all(small)).entries()) {
    assert.equal((r as { echo: { i: number } }).echo.i, i);
  }
  await a.t.close();
  await b.t.close();
});

Deno.test("Transport.request() to a dead address rejects within the timeout", async () => {
  const a = await node("c1", 1);
  const dead = `127.0.0.1:${await unusedPort()}`;
  await assert.rejects(
    a.t.request(dead, { op: "echo" }, { timeoutMs: 2000 }),
    (e: Error) => e instanceof TransportError && /cannot connect|timed out/.test(e.message),
  );
  assert.ok(a.logs.some((l) => l.includes(`cannot reach ${dead}`)), a.logs.join("\n"));
  await a.t.close();
});

Deno.test("Transport.request() rejects when the connection is lost or the transport closes", async () => {
  const a = await node("c1", 1);
  const b = await node("c1", 2);
  const lost = a.t.request(b.addr, { op: "hang" }, { timeoutMs: 60_000 });
  await waitFor("a connection to b", () => a.t.connected().includes(b.addr));
  const lostRejected = assert.rejects(
    lost,
    (e: Error) => e instanceof TransportError && /lost/.test(e.message),
  );
  await b.t.close();
  await lostRejected;
  const c = await node("c1", 3);
  const pending = a.t.request(c.addr, { op: "hang" }, { timeoutMs: 60_000 });
  const pendingRejected = assert.rejects(pending, /transport closed/);
  await a.t.close();
  await pendingRejected;
  assert.equal(a.t.send(c.addr, {}), false);
  await assert.rejects(a.t.request(c.addr, {}), /transport closed/);
  await c.t.close();
});

Deno.test("Transport.send() flows again after the peer's listener restarts", async () => {
  const a = await node("c1", 1);
  const b = await node("c1", 2);
  const port = b.t.address.port;
  a.t.send(b.addr, "before");
  await waitFor("first message", () => b.msgs.length === 1);
  await b.t.close();
  const b2 = await node("c1", 2, { port });
  assert.equal(b2.addr, b.addr);
  let i = 0;
  await waitFor("a message after the restart", () => {
    a.t.send(b.addr, `after ${i++}`);
    return b2.msgs.length > 0;
  });
  assert.match(String(b2.msgs[0]!.body), /^after \d+$/);
  assert.ok(a.logs.some((l) => l.includes(`connected to ${b.addr} again`)), a.logs.join("\n"));
  await a.t.close();
  await b2.t.close();
});

Deno.test("Transport rejects a peer of a foreign cluster and logs it on both sides", async () => {
  const a = await node("alpha", 1);
  const b = await node("beta", 2);
  await assert.rejects(
    a.t.request(b.addr, { op: "echo" }),
    (e: Error) => e instanceof TransportError && /foreign cluster alpha/.test(e.message),
  );
  assert.ok(
    b.logs.some((l) =>
      /^cluster: rejected connection from 127\.0\.0\.1:\d+: foreign cluster alpha/.test(l)
    ),
    b.logs.join("\n"),
  );
  assert.ok(
    a.logs.some((l) => l.startsWith(`cluster: connection to ${b.addr} rejected: foreign cluster`)),
    a.logs.join("\n"),
  );
  assert.deepEqual(b.msgs, []);
  await a.t.close();
  await b.t.close();
});

Deno.test("Transport rejects a hello of another protocol version", async () => {
  const b = await node("c1", 2);
  const raw = new Raw(b.t.address.port);
  const local = await raw.localAddress();
  raw.frame(hello("c1", PROTOCOL_VERSION + 1));
  await waitFor("the connection closed", () => raw.closed);
  assert.deepEqual(raw.frames, [{
    k: "reject",
    reason: `protocol version ${PROTOCOL_VERSION + 1}, this node speaks ${PROTOCOL_VERSION}`,
  }]);
  assert.deepEqual(b.logs, [
    `cluster: rejected connection from ${local}: protocol version 2, this node speaks 1`,
  ]);
  await raw.close();
  await b.t.close();
});

Deno.test("Transport lets a node without a cluster make requests but drops its messages", async () => {
  const a = await node("", 0);
  const b = await node("c1", 2);
  assert.equal(a.t.send(b.addr, "not yet"), false);
  const got = await a.t.request(b.addr, { op: "join" }) as { from: Hello };
  assert.equal(got.from.clusterId, "");

  await t_rawMessageDropped(b);

  // Joined: the next frame re-announces the identity on the same connection.
  a.id = { clusterId: "c1", nodeId: 7, address: a.addr };
  assert.equal(a.t.send(b.addr, "joined"), true);
  await waitFor("the message after joining", () => b.msgs.length === 1);
  assert.deepEqual(b.msgs[0], { from: { ...a.id, remoteHost: hostOf(a.addr) }, body: "joined" });
  await a.t.close();
  await b.t.close();
});

/** A raw dialer with clusterId "" sends a message then a request: the message is dropped. */
async function t_rawMessageDropped(b: Node): Promise<void> {
  const raw = new Raw(b.t.address.port);
  raw.frame(hello(""));
  raw.frame({ k: "msg", b: "sneaky" });
  raw.frame({ k: "req", id: 1, b: { op: "echo" } });
  await waitFor("welcome and response", () => raw.frames.length === 2);
  assert.equal((raw.frames[0] as { k: string }).k, "welcome");
  assert.equal((raw.frames[1] as { k: string; id: number }).id, 1);
  assert.deepEqual(b.msgs, []);
  assert.ok(b.logs.some((l) => l.includes("it has not joined a cluster")), b.logs.join("\n"));
  await raw.close();
}

Deno.test("Transport closes a connection that sends malformed frames and keeps serving", async (t) => {
  const b = await node("c1", 2, { frameBytesMax: 1024 });
  const a = await node("c1", 1);
  const cases: [string, (raw: Raw) => void, RegExp][] = [
    ["garbage", (raw) => raw.bytes(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")), /exceeds/],
    ["not msgpack", (raw) => raw.bytes(new Uint8Array([0, 0, 0, 2, 1, 2])), /malformed frame/],
    ["not an object", (raw) => raw.frame([1, 2]), /not an object/],
    ["unknown kind", (raw) => {
      raw.frame(hello("c1"));
      raw.frame({ k: "nope" });
    }, /unknown frame kind "nope"/],
    ["oversized length prefix", (raw) => raw.bytes(new Uint8Array([0, 0, 4, 1])), /1025 bytes/],
    ["non-hello first frame", (raw) => raw.frame({ k: "msg", b: 1 }), /expected a hello first/],
    ["bad hello types", (raw) => raw.frame({ ...hello("c1"), nodeId: "x" }), /bad nodeId/],
    ["truncated frame then close", (raw) => {
      raw.bytes(new Uint8Array([0, 0, 0, 100, 1, 2, 3]));
      raw.end();
    }, /closed mid-frame \(7 bytes of a 100-byte frame\)/],
  ];
  for (const [name, misbehave, reason] of cases) {
    await t.step(name, async () => {
      b.logs.length = 0;
      const raw = new Raw(b.t.address.port);
      const local = await raw.localAddress();
      misbehave(raw);
      await waitFor("the connection closed", () => raw.closed);
      await waitFor("a log line", () => b.logs.length > 0);
      assert.equal(b.logs.length, 1, b.logs.join("\n"));
      assert.ok(b.logs[0]!.includes(local), b.logs[0]);
      assert.match(b.logs[0]!, reason);
      await raw.close();
      const ok = await a.t.request(b.addr, { op: "echo", name }) as { echo: { name: string } };
      assert.equal(ok.echo.name, name);
    });
  }
  await a.t.close();
  await b.t.close();
});

Deno.test("Transport answers busy beyond INBOUND_REQUESTS_MAX requests in flight", async () => {
  const b = await node("c1", 2);
  const raw = new Raw(b.t.address.port);
  raw.frame(hello("c1"));
  for (let id = 1; id <= INBOUND_REQUESTS_MAX + 1; id++) {
    raw.frame({ k: "req", id, b: { op: "hang" } });
  }
  await waitFor("welcome and one response", () => raw.frames.length === 2);
  assert.deepEqual(raw.frames[1], {
    k: "res",
    id: INBOUND_REQUESTS_MAX + 1,
    err: `busy: ${INBOUND_REQUESTS_MAX} requests in flight`,
  });
  await raw.close();
  await b.t.close();
});

Deno.test("Transport.send() returns false once the queue to a down peer is full", async () => {
  const a = await node("c1", 1, { sendQueueMax: 8 });
  const dead = `127.0.0.1:${await unusedPort()}`;
  for (let i = 0; i < 8; i++) assert.equal(a.t.send(dead, i), true);
  assert.equal(a.t.send(dead, 8), false);
  await assert.rejects(a.t.request(dead, {}), /queue .* is full/);
  assert.deepEqual(a.t.connected(), []);
  await a.t.close();
});

Deno.test("Transport.send() returns false once the bytes queued to a down peer pass the cap", async () => {
  const a = await node("c1", 1, { sendQueueBytesMax: 4096 });
  const dead = `127.0.0.1:${await unusedPort()}`;
  assert.equal(a.t.send(dead, new Uint8Array(3000)), true);
  assert.equal(a.t.send(dead, new Uint8Array(3000)), false);
  assert.equal(a.t.send(dead, new Uint8Array(10)), true);
  await a.t.close();
});

Deno.test("Transport.send() queues at most UNCONNECTED_QUEUE_BYTES_MAX for a peer that is not connected", async () => {
  // A member that is down must not cost a full send queue of raft messages (raft resends).
  const a = await node("c1", 1);
  const dead = `127.0.0.1:${await unusedPort()}`;
  let queued = 0;
  while (a.t.send(dead, new Uint8Array(256 * 1024))) queued += 256 * 1024;
  assert.ok(queued <= UNCONNECTED_QUEUE_BYTES_MAX, `${queued} bytes queued`);
  assert.ok(queued >= UNCONNECTED_QUEUE_BYTES_MAX / 2, `${queued} bytes queued`);
  await a.t.close();
});

Deno.test("Transport.send() drops frames over frameBytesMax and bad addresses", async () => {
  const a = await node("c1", 1, { frameBytesMax: 100 });
  const b = await node("c1", 2);
  assert.equal(a.t.send(b.addr, new Uint8Array(200)), false);
  assert.match(a.logs[0]!, /dropped a message to .*exceed the frame limit of 100 bytes/);
  await assert.rejects(a.t.request(b.addr, new Uint8Array(200)), /frame limit/);
  assert.equal(a.t.send("nowhere", 1), false);
  assert.match(a.logs.at(-1)!, /cannot send to "nowhere"/);
  assert.equal(a.t.send(b.addr, "small"), true);
  await waitFor("the small message", () => b.msgs.length === 1);
  await a.t.close();
  await b.t.close();
});

Deno.test("Transport.start() fails with one line when the address is taken", async () => {
  const a = await node("c1", 1);
  const b = new Transport({
    listen: a.t.address,
    self: () => a.id,
    onMessage: () => {},
    onRequest: () => Promise.resolve(null),
  });
  await assert.rejects(b.start(), /^TransportError: cluster: cannot listen on 127\.0\.0\.1:\d+: /);
  await b.close();
  await a.t.close();
});
