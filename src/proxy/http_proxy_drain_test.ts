/**
 * HttpProxy.drain(): the graceful shutdown of SIGTERM (README "Shutdown and reload").
 */
import assert from "node:assert/strict";
import net from "node:net";
import type http from "node:http";
import { type Backend, spec, startBackend, TestStore, withProxy } from "./_testing.ts";
import { unusedPort } from "../../test/ports.ts";
import { h2Connect, h2Request, withH2Proxy } from "./_h2_testing.ts";

/** A backend that holds each request until `release()`; `arrived` resolves with the first. */
async function slowBackend(): Promise<
  Backend & { arrived: Promise<void>; release(): void }
> {
  const arrived = Promise.withResolvers<void>();
  const held: http.ServerResponse[] = [];
  let released = false;
  const b = await startBackend("slow", (req, res) => {
    req.resume();
    if (released) return void res.end("slow");
    held.push(res);
    arrived.resolve();
  });
  return Object.assign(b, {
    arrived: arrived.promise,
    release: () => {
      released = true;
      for (const res of held.splice(0)) res.end("slow");
    },
  });
}

/** A keep-alive client connection: `send` writes a request, `response()` reads one. */
function keepAlive(port: number): {
  socket: net.Socket;
  closed: Promise<void>;
  received: () => string;
} {
  const socket = net.connect(port, "127.0.0.1");
  let text = "";
  socket.on("data", (d) => text += d.toString("latin1"));
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  return { socket, closed, received: () => text };
}

const GET = "GET /x HTTP/1.1\r\nhost: web.test\r\n\r\n";

/** Resolves once `f()` holds, checked on each of the socket's data events. */
function until(socket: net.Socket, f: () => boolean): Promise<void> {
  if (f()) return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => {
      if (!f()) return;
      socket.off("data", check);
      resolve();
    };
    socket.on("data", check);
  });
}

/** Whether a new connection to `port` is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

Deno.test("HttpProxy.drain() lets a slow request in flight finish with Connection: close; new connections are refused", async () => {
  const b = await slowBackend();
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, {}, async (port, proxy) => {
      const c = keepAlive(port);
      c.socket.write(GET);
      await b.arrived;
      let drained: number | null = null;
      const draining = proxy.drain(60_000).then((n) => drained = n);
      assert.equal(await refused(port), true, "the listener is closed");
      assert.equal(drained, null, "the drain waits for the request");
      b.release();
      await c.closed; // the proxy closes the connection after the response
      assert.match(c.received(), /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(c.received(), /\r\nconnection: close\r\n/i);
      assert.match(c.received(), /\r\n\r\nslow$/);
      await draining;
      assert.equal(drained, 0, "nothing was cut");
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy.drain() closes an idle keep-alive connection at once, while a busy one goes on", async () => {
  const b = await slowBackend();
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, {}, async (port, proxy) => {
      b.release(); // the idle connection's request is answered at once
      const idle = keepAlive(port);
      idle.socket.write(GET);
      await until(idle.socket, () => idle.received().endsWith("slow"));
      assert.doesNotMatch(idle.received(), /connection: close/i, "kept alive before the drain");
      const busy = keepAlive(port);
      const b2 = await slowBackend();
      ts.deregister("web-a");
      ts.register(spec({ id: "web-b", port: b2.port }));
      await proxy.settled();
      busy.socket.write(GET);
      await b2.arrived;
      let finished = false;
      const draining = proxy.drain(60_000).then(() => finished = true);
      // Closed by the drain, not at its timeout: the busy request is still held meanwhile.
      await idle.closed;
      assert.equal(finished, false);
      b2.release();
      await busy.closed;
      assert.match(busy.received(), /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nslow$/);
      await draining;
      await b2.close();
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy.drain() cuts a request still in flight at the timeout and counts it", async () => {
  const b = await slowBackend(); // never released
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, {}, async (port, proxy) => {
      const c = keepAlive(port);
      c.socket.write(GET);
      await b.arrived;
      assert.equal(await proxy.drain(100), 1);
      await c.closed;
      assert.equal(c.received(), "", "no response: the request was cut");
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy.drain() closes TCP route listeners and lets an open relay finish", async () => {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
  const tcpPort = await unusedPort();
  const ts = new TestStore();
  const echoPort = (echo.address() as net.AddressInfo).port;
  ts.register(spec({ id: "db-a", service: "db", port: echoPort, tcpPort, httpHosts: [] }));
  try {
    await withProxy(ts, {}, async (_port, proxy) => {
      const c = keepAlive(tcpPort);
      c.socket.write("one");
      await until(c.socket, () => c.received() === "one");
      let drained: number | null = null;
      const draining = proxy.drain(60_000).then((n) => drained = n);
      assert.equal(await refused(tcpPort), true, "the TCP route listener is closed");
      c.socket.write("two");
      await until(c.socket, () => c.received() === "onetwo");
      assert.equal(drained, null);
      c.socket.end();
      await c.closed;
      await draining;
      assert.equal(drained, 0);
    });
  } finally {
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  }
});

Deno.test("HttpProxy.drain() sends HTTP/2 clients GOAWAY and lets their stream under way finish", async () => {
  const b = await slowBackend();
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withH2Proxy(ts, {}, async (port, proxy) => {
      const client = h2Connect(port);
      const goaway = new Promise<void>((resolve) => client.once("goaway", () => resolve()));
      const answer = h2Request(client, { ":path": "/x", ":authority": "web.test" });
      await b.arrived;
      let drained: number | null = null;
      const draining = proxy.drain(60_000).then((n) => drained = n);
      await goaway;
      assert.equal(await refused(port), true, "the HTTPS listener is closed");
      assert.equal(drained, null, "the drain waits for the stream");
      b.release();
      const a = await answer;
      assert.equal(a.status, 200);
      assert.equal(a.body.toString(), "slow");
      assert.equal(a.rstCode, 0);
      await draining;
      assert.equal(drained, 0);
      client.close();
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy.drain() resets an HTTP/2 stream still open at the timeout and counts it", async () => {
  const b = await slowBackend(); // never released
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withH2Proxy(ts, {}, async (port, proxy) => {
      const client = h2Connect(port);
      const answer = h2Request(client, { ":path": "/x", ":authority": "web.test" });
      await b.arrived;
      assert.equal(await proxy.drain(100), 1);
      const a = await answer;
      assert.equal(a.status, 0, "no response");
      assert.notEqual(a.rstCode, 0, "the stream was reset");
      client.close();
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy.drain() lets an upgraded tunnel go on until it closes", async () => {
  const b = await startBackend("ws", undefined, (_req, socket) => {
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    );
    socket.on("data", (d) => socket.write(d.toString().toUpperCase()));
    socket.on("end", () => socket.end()); // the client closed: so does the instance
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, {}, async (port, proxy) => {
      const c = keepAlive(port);
      c.socket.write(
        "GET /ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
      );
      await until(c.socket, () => c.received().includes("\r\n\r\n"));
      let drained: number | null = null;
      const draining = proxy.drain(60_000).then((n) => drained = n);
      c.socket.write("still here");
      await until(c.socket, () => c.received().endsWith("STILL HERE"));
      assert.equal(drained, null, "the drain waits for the tunnel");
      c.socket.end();
      await c.closed;
      await draining;
      assert.equal(drained, 0);
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy.drain() answers the request under way and leaves one pipelined behind it unanswered", async () => {
  const b = await slowBackend();
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, {}, async (port, proxy) => {
      const c = keepAlive(port);
      c.socket.write(GET + GET);
      await b.arrived;
      const draining = proxy.drain(60_000);
      b.release();
      await c.closed;
      const responses = c.received().match(/HTTP\/1\.1 /g) ?? [];
      assert.equal(responses.length, 1, c.received());
      assert.match(c.received(), /\r\nconnection: close\r\n[^]*slow$/i);
      assert.equal(await draining, 0);
    });
  } finally {
    await b.close();
  }
});
