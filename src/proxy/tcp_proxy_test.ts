import assert from "node:assert/strict";
import net from "node:net";
import { HttpProxy } from "./mod.ts";
import { deadPort, spec, TestStore } from "./test_util.ts";

interface EchoServer {
  port: number;
  connections: number;
  close(): Promise<void>;
}

/** A TCP server that answers every chunk with `NAME:chunk`. */
async function startEcho(name: string): Promise<EchoServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    e.connections++;
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
    s.on("error", () => s.destroy());
    s.on("data", (d) => s.write(`${name}:${d}`));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const e: EchoServer = {
    port: (server.address() as net.AddressInfo).port,
    connections: 0,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return e;
}

/** Connects, sends `msg`, returns the first reply (or "" when the proxy closes). */
function exchange(port: number, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, "127.0.0.1", () => c.write(msg));
    let got = "";
    c.on("data", (d) => {
      got += d;
      c.destroy();
      resolve(got);
    });
    c.on("close", () => resolve(got));
    c.on("error", (e: Error & { code?: string }) => {
      if (e.code === "ECONNRESET") resolve(got);
      else reject(e);
    });
  });
}

Deno.test("HttpProxy opens a TCP route listener and relays round robin, skipping a dead instance", async () => {
  const a = await startEcho("a");
  const b = await startEcho("b");
  const tcpPort = await deadPort();
  const ts = new TestStore();
  ts.register(spec({ id: "db-a", service: "db", port: a.port, tcpPort, httpHosts: [] }));
  ts.register(spec({ id: "db-b", service: "db", port: b.port, tcpPort, httpHosts: [] }));
  ts.register(spec({ id: "db-c", service: "db", port: await deadPort(), tcpPort, httpHosts: [] }));
  const proxy = new HttpProxy({
    store: ts.store,
    listen: { host: "127.0.0.1", port: 0 },
    edgeDomain: null,
    log: () => {},
  });
  try {
    await proxy.start();
    assert.deepEqual(proxy.tcpPorts, [tcpPort]);
    const replies: string[] = [];
    for (let i = 0; i < 6; i++) replies.push(await exchange(tcpPort, "hi"));
    assert.deepEqual(replies.sort(), ["a:hi", "a:hi", "a:hi", "b:hi", "b:hi", "b:hi"]);

    // Removing the route closes the listener.
    for (const id of ["db-a", "db-b", "db-c"]) ts.deregister(id);
    await proxy.settled();
    assert.deepEqual(proxy.tcpPorts, []);
    await assert.rejects(exchange(tcpPort, "hi"), /ECONNREFUSED/);
  } finally {
    await proxy.close();
    ts.store.close();
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("HttpProxy reports a TCP route port it cannot bind and keeps serving HTTP", async () => {
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  const tcpPort = (busy.address() as net.AddressInfo).port;
  const ts = new TestStore();
  ts.register(spec({ id: "db-a", service: "db", port: 1, tcpPort, httpHosts: [] }));
  const logs: string[] = [];
  const proxy = new HttpProxy({
    store: ts.store,
    listen: { host: "127.0.0.1", port: 0 },
    edgeDomain: null,
    log: (l) => logs.push(l),
  });
  try {
    await proxy.start();
    assert.deepEqual(proxy.tcpPorts, []);
    assert.equal(logs.length, 1);
    assert.match(
      logs[0]!,
      new RegExp(`cannot listen on TCP 127\\.0\\.0\\.1:${tcpPort} for service db`),
    );
  } finally {
    await proxy.close();
    ts.store.close();
    await new Promise<void>((resolve) => busy.close(() => resolve()));
  }
});
