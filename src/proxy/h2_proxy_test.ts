/**
 * HTTP/2 clients through the whole proxy: HTTPS listener (ALPN h2) → H2Frontend → dispatch →
 * pooled HTTP/1.1 (or h2c) connections to the instances.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import { spec, startBackend, TestStore } from "./_testing.ts";
import { h2Connect, type H2cServer, h2cServer, h2Request, withH2Proxy } from "./_h2_testing.ts";
import { unusedPort } from "../../test/ports.ts";

const GET = { ":method": "GET", ":path": "/", ":authority": "web.test" };

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function bytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + (i >> 9)) & 0xff;
  return b;
}

Deno.test("HTTP/2: parallel streams of one connection go over pooled HTTP/1.1 connections", async () => {
  const a = await startBackend("a");
  const b = await startBackend("b");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  ts.register(spec({ id: "web-b", port: b.port }));
  try {
    await withH2Proxy(ts, {}, async (port) => {
      const client = h2Connect(port);
      try {
        const answers = await Promise.all(
          Array.from({ length: 40 }, (_, i) => h2Request(client, { ...GET, ":path": `/p${i}` })),
        );
        assert.deepEqual(answers.map((x) => x.status), Array(40).fill(200));
        for (const [i, x] of answers.entries()) {
          assert.match(x.body.toString(), new RegExp(` /p${i}$`));
        }
        assert.equal(a.seen.length + b.seen.length, 40);
        assert.ok(a.seen.length > 0 && b.seen.length > 0);
        const seen = a.seen[0]!;
        assert.equal(seen.host, "web.test");
        assert.equal(seen["x-forwarded-proto"], "https");
        assert.equal(seen["x-forwarded-for"], "127.0.0.1");
        // The instance got an HTTP/1.1 request: connection-level headers are the proxy's own.
        assert.equal(seen[":authority"], undefined);
        // Pooled: a second round reuses the connections of the first.
        const before = a.connections + b.connections;
        for (let i = 0; i < 10; i++) assert.equal((await h2Request(client, GET)).status, 200);
        assert.equal(a.connections + b.connections, before);
      } finally {
        client.close();
      }
    });
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

Deno.test("HTTP/2: a large body streams to the instance and back", async () => {
  const echo = await startBackend("echo", (req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream" });
    req.pipe(res);
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: echo.port }));
  try {
    await withH2Proxy(ts, {}, async (port) => {
      const client = h2Connect(port);
      try {
        const data = bytes(8 * 1024 * 1024 + 3);
        const x = await h2Request(client, { ...GET, ":method": "PUT" }, data);
        assert.equal(x.status, 200);
        assert.ok(x.body.equals(data));
        // Without content-length the instance got the body chunked; with one, as it was.
        assert.equal(echo.seen[0]!["transfer-encoding"], "chunked");
        const sized = await h2Request(client, {
          ...GET,
          ":method": "PUT",
          "content-length": String(data.length),
        }, data);
        assert.ok(sized.body.equals(data));
        assert.equal(echo.seen[1]!["content-length"], String(data.length));
      } finally {
        client.close();
      }
    });
  } finally {
    await echo.close();
  }
});

Deno.test("HTTP/2: HEAD, 204 and 304 from the instance come without a body", async () => {
  const a = await startBackend("a", (req, res) => {
    const status = req.url === "/204" ? 204 : req.url === "/304" ? 304 : 200;
    res.writeHead(status, { "x-url": req.url ?? "" });
    res.end(status === 200 ? "body" : undefined);
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withH2Proxy(ts, {}, async (port) => {
      const client = h2Connect(port);
      try {
        const head = await h2Request(client, { ...GET, ":method": "HEAD" });
        assert.equal(head.status, 200);
        assert.equal(head.body.length, 0);
        for (const path of ["/204", "/304"]) {
          const x = await h2Request(client, { ...GET, ":path": path });
          assert.equal(x.status, Number(path.slice(1)));
          assert.equal(x.headers["x-url"], path);
          assert.equal(x.body.length, 0);
        }
        assert.equal((await h2Request(client, GET)).body.toString(), "body");
      } finally {
        client.close();
      }
    });
  } finally {
    await a.close();
  }
});

Deno.test("HTTP/2: proxy errors are 404, 503, 502 and 504 as over HTTP/1.1", async () => {
  const silent = await startBackend("silent", () => {/* never answers */});
  const ts = new TestStore();
  ts.register(spec({ id: "down-a", service: "down", httpHosts: ["down.test"], port: 1 }));
  ts.check("down-a", "critical");
  ts.register(
    spec({ id: "gone-a", service: "gone", httpHosts: ["gone.test"], port: await unusedPort() }),
  );
  ts.register(spec({ id: "slow-a", service: "slow", httpHosts: ["slow.test"], port: silent.port }));
  try {
    await withH2Proxy(ts, { responseTimeoutMs: 100 }, async (port) => {
      const client = h2Connect(port);
      try {
        const cases: [string, number, RegExp][] = [
          ["nothing.test", 404, /no route for nothing\.test\//],
          ["down.test", 503, /no healthy instance of service down/],
          ["gone.test", 502, /bad gateway: service gone: instance gone-a: ECONNREFUSED/],
          ["slow.test", 504, /gateway timeout: service slow: instance slow-a/],
        ];
        for (const [host, status, text] of cases) {
          const x = await h2Request(client, { ...GET, ":authority": host });
          assert.equal(x.status, status, host);
          assert.match(x.body.toString(), text);
          assert.match(String(x.headers["content-type"]), /^text\/plain/);
        }
      } finally {
        client.close();
      }
    });
  } finally {
    await silent.close();
  }
});

Deno.test("HTTP/2: a stream the client cancels aborts its upstream request", async () => {
  let closed = 0;
  let got = 0;
  const held = await startBackend("held", (req) => {
    got++;
    req.socket.once("close", () => closed++);
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: held.port }));
  try {
    await withH2Proxy(ts, {}, async (port) => {
      const client = h2Connect(port);
      try {
        const req = client.request(GET);
        req.on("error", () => {});
        await until(() => got === 1, "the upstream request");
        req.close(http2.constants.NGHTTP2_CANCEL);
        await until(() => closed === 1, "the upstream connection closed");
      } finally {
        client.close();
      }
    });
  } finally {
    await held.close();
  }
});

Deno.test("HTTP/2: a client that reads nothing stops the instance's response mid-way", async () => {
  const total = 32 * 1024 * 1024;
  let finished = false;
  const big = await startBackend("big", (_req, res) => {
    res.writeHead(200, { "content-length": String(total) });
    const chunk = Buffer.alloc(64 * 1024, 120);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
      res.end();
    };
    res.once("finish", () => finished = true);
    pump();
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: big.port }));
  try {
    await withH2Proxy(ts, {}, async (port) => {
      const client = h2Connect(port);
      try {
        const req = client.request(GET);
        req.pause();
        await new Promise((r) => req.once("response", r));
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(finished, false, "the instance wrote the whole body to a client not reading");
        let received = 0;
        req.on("data", (d: Buffer) => received += d.length);
        const ended = new Promise((r) => req.once("end", r));
        req.resume();
        await ended;
        assert.equal(received, total);
        assert.equal(finished, true);
      } finally {
        client.close();
      }
    });
  } finally {
    await big.close();
  }
});

/** An h2c instance echoing each request DATA chunk at once, ending with grpc-status 0. */
function grpcEcho(): Promise<H2cServer> {
  return h2cServer((stream) => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
      waitForTrailers: true,
    });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.on("data", (d: Buffer) => stream.write(d));
    stream.on("end", () => stream.end());
  });
}

Deno.test("HTTP/2: a gRPC call streams both ways through an h2c route and ends with trailers", async () => {
  const backend = await grpcEcho();
  const ts = new TestStore();
  ts.register(spec({ id: "rpc-a", port: backend.port, meta: { "berth.http.proto": "grpc" } }));
  try {
    await withH2Proxy(ts, {}, async (port) => {
      const client = h2Connect(port);
      try {
        const call = client.request({
          ...GET,
          ":method": "POST",
          "content-type": "application/grpc",
          te: "trailers",
        });
        const received: string[] = [];
        let trailers: http2.IncomingHttpHeaders | null = null;
        call.on("data", (d: Buffer) => received.push(d.toString()));
        call.on("trailers", (t) => trailers = t);
        const ended = new Promise((r) => call.once("end", r));
        // Each message comes back before the next is sent: nothing waits for the request's end.
        for (const msg of ["one", "two", "three"]) {
          call.write(msg);
          await until(() => received.join("").endsWith(msg), `the echo of ${msg}`);
        }
        call.end();
        await ended;
        assert.equal(received.join(""), "onetwothree");
        assert.equal(trailers!["grpc-status"], "0");
      } finally {
        client.close();
      }
    });
  } finally {
    await backend.close();
  }
});

Deno.test("HTTP/2: a gRPC call with no passing instance gets grpc-status 14 in trailers", async () => {
  const ts = new TestStore();
  ts.register(spec({ id: "rpc-a", port: 1, meta: { "berth.http.proto": "grpc" } }));
  ts.check("rpc-a", "critical");
  await withH2Proxy(ts, {}, async (port) => {
    const client = h2Connect(port);
    try {
      const x = await h2Request(client, {
        ...GET,
        ":method": "POST",
        "content-type": "application/grpc",
        te: "trailers",
      }, "");
      assert.equal(x.status, 200);
      const status = x.trailers?.["grpc-status"] ?? x.headers["grpc-status"];
      assert.equal(status, "14");
    } finally {
      client.close();
    }
  });
});

Deno.test("HTTP/2: HttpProxy.close() sends GOAWAY and lets a request under way finish", async () => {
  let answer: () => void = () => {};
  const slow = await startBackend("slow", (_req, res) => {
    answer = () => res.end("finished");
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: slow.port }));
  try {
    let closed: Promise<void> | null = null;
    await withH2Proxy(ts, {}, async (port, proxy) => {
      const client = h2Connect(port);
      let goaway: number | null = null;
      client.on("goaway", (code: number) => goaway = code);
      try {
        const inFlight = h2Request(client, GET);
        await until(() => slow.seen.length === 1, "the upstream request");
        closed = proxy.close();
        await until(() => goaway !== null, "GOAWAY");
        assert.equal(goaway, http2.constants.NGHTTP2_NO_ERROR);
        answer();
        const x = await inFlight;
        assert.equal(x.status, 200);
        assert.equal(x.body.toString(), "finished");
        await closed;
      } finally {
        client.destroy();
      }
    });
  } finally {
    await slow.close();
  }
});
