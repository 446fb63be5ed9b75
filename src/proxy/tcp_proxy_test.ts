import assert from "node:assert/strict";
import net from "node:net";
import { spec, TestStore, withProxy } from "./_testing.ts";
import { unusedPort } from "../../test/ports.ts";

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
  const tcpPort = await unusedPort();
  const ts = new TestStore();
  ts.register(spec({ id: "db-a", service: "db", port: a.port, tcpPort, httpHosts: [] }));
  ts.register(spec({ id: "db-b", service: "db", port: b.port, tcpPort, httpHosts: [] }));
  ts.register(
    spec({ id: "db-c", service: "db", port: await unusedPort(), tcpPort, httpHosts: [] }),
  );
  try {
    await withProxy(ts, {}, async (_port, proxy) => {
      assert.deepEqual(proxy.tcpPorts, [tcpPort]);
      const replies: string[] = [];
      for (let i = 0; i < 6; i++) replies.push(await exchange(tcpPort, "hi"));
      assert.deepEqual(replies.sort(), ["a:hi", "a:hi", "a:hi", "b:hi", "b:hi", "b:hi"]);

      // Removing the route closes the listener.
      for (const id of ["db-a", "db-b", "db-c"]) ts.deregister(id);
      await proxy.settled();
      assert.deepEqual(proxy.tcpPorts, []);
      await assert.rejects(exchange(tcpPort, "hi"), /ECONNREFUSED/);
    });
  } finally {
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
  try {
    await withProxy(ts, { log: (l) => logs.push(l) }, (_port, proxy) => {
      assert.deepEqual(proxy.tcpPorts, []);
      assert.equal(logs.length, 1);
      assert.match(
        logs[0]!,
        new RegExp(`cannot listen on TCP 127\\.0\\.0\\.1:${tcpPort} for service db`),
      );
    });
  } finally {
    await new Promise<void>((resolve) => busy.close(() => resolve()));
  }
});

Deno.test("HttpProxy binds its own HTTP port before a TCP route that claims the same port", async () => {
  const port = await unusedPort();
  const ts = new TestStore();
  ts.register(spec({ id: "db-a", service: "db", port: 1, tcpPort: port, httpHosts: [] }));
  const logs: string[] = [];
  await withProxy(
    ts,
    { listen: { host: "127.0.0.1", port }, log: (l) => logs.push(l) },
    // Before the fix, start() threw "cannot listen" here: the route had taken the port.
    (_port, proxy) => {
      assert.equal(proxy.address.port, port);
      assert.deepEqual(proxy.report().tcp, [{
        port,
        service: "db",
        state: "failed",
        error: `cannot listen on 127.0.0.1:${port}: EADDRINUSE`,
      }]);
      assert.match(logs.join("\n"), /cannot listen on TCP .* for service db: EADDRINUSE/);
    },
  );
});

Deno.test("HttpProxy refuses a TCP route on one of the agent's own listeners and reports it failed", async () => {
  const apiPort = await unusedPort();
  const ts = new TestStore();
  ts.register(spec({ id: "db-a", service: "db", port: 1, tcpPort: apiPort, httpHosts: [] }));
  const logs: string[] = [];
  await withProxy(ts, {
    log: (l) => logs.push(l),
    reserved: [{ what: "api", host: "0.0.0.0", port: apiPort }],
  }, async (_port, proxy) => {
    assert.deepEqual(proxy.tcpPorts, []);
    // Not bound: the port is still free for the agent's API.
    const l = net.createServer();
    await new Promise<void>((resolve) => l.listen(apiPort, "127.0.0.1", resolve));
    await new Promise<void>((resolve) => l.close(() => resolve()));
    const [route] = proxy.report().tcp;
    assert.equal(route?.state, "failed");
    assert.equal(
      route?.error,
      `port ${apiPort} is the agent's own api listener (0.0.0.0:${apiPort})`,
    );
    assert.equal(logs.length, 1);
    assert.match(
      logs[0]!,
      /refused TCP route 127\.0\.0\.1:\d+ of service db: .*change berth\.tcp\.port/,
    );
  });
});

Deno.test("HttpProxy.report() lists a TCP port two services claim as failed for the one that lost it", async () => {
  const e = await startEcho("a");
  const tcpPort = await unusedPort();
  const ts = new TestStore();
  ts.register(spec({ id: "a-1", service: "alpha", port: e.port, tcpPort, httpHosts: [] }));
  ts.register(spec({ id: "b-1", service: "beta", port: e.port, tcpPort, httpHosts: [] }));
  try {
    await withProxy(ts, {}, async (_port, proxy) => {
      assert.deepEqual(proxy.report().tcp, [
        { port: tcpPort, service: "alpha", state: "listening", error: null },
        {
          port: tcpPort,
          service: "beta",
          state: "failed",
          error: `port ${tcpPort} is taken by service alpha`,
        },
      ]);
      assert.equal(await exchange(tcpPort, "hi"), "a:hi");
    });
  } finally {
    await e.close();
  }
});
