import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http from "node:http";
import net from "node:net";
import type { ProxyOptions } from "./mod.ts";
import { rawBackend, rawClient, spec, startBackend, TestStore, withProxy } from "./_testing.ts";

/**
 * Writes `wire` to the proxy on one connection; resolves with everything received once
 * `done(text)` holds, or when the proxy closes the connection (`closed` true).
 */
function exchange(
  port: number,
  wire: string,
  done: (text: string) => boolean = () => false,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, "127.0.0.1", () => c.write(wire, "latin1"));
    let text = "";
    c.on("data", (d) => {
      text += d.toString("latin1");
      if (done(text)) {
        c.destroy();
        resolve({ text, closed: false });
      }
    });
    c.on("end", () => {
      c.destroy();
      resolve({ text, closed: true });
    });
    c.on("error", reject);
  });
}

async function withWeb(
  over: Partial<ProxyOptions>,
  fn: (port: number) => Promise<void>,
): Promise<void> {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, over, fn);
  } finally {
    await a.close();
  }
}

const count = (text: string, s: string) => text.split(s).length - 1;

Deno.test("ClientConn answers pipelined requests in order on one keep-alive connection", async () => {
  await withWeb({}, async (port) => {
    const wire = [1, 2, 3].map((i) => `GET /r${i} HTTP/1.1\r\nHost: web.test\r\n\r\n`).join("");
    const { text } = await exchange(port, wire, (t) => count(t, "a /r") === 3);
    assert.equal(count(text, "HTTP/1.1 200 OK"), 3);
    assert.ok(text.indexOf("a /r1") < text.indexOf("a /r2"));
    assert.ok(text.indexOf("a /r2") < text.indexOf("a /r3"));
    assert.match(text, /\r\ndate: /i);
  });
});

Deno.test("ClientConn closes after Connection: close and frames HTTP/1.0 answers", async () => {
  await withWeb({}, async (port) => {
    const close = await exchange(
      port,
      "GET /c HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n",
    );
    assert.equal(close.closed, true);
    assert.match(close.text, /^HTTP\/1\.1 200 [^]*\r\nconnection: close\r\n[^]*a \/c$/i);
    const old = await exchange(port, "GET /o HTTP/1.0\r\nHost: web.test\r\n\r\n");
    assert.equal(old.closed, true, "HTTP/1.0 without keep-alive closes");
    assert.match(old.text, /a \/o$/);
    const kept = await exchange(
      port,
      "GET /k HTTP/1.0\r\nHost: web.test\r\nConnection: keep-alive\r\n\r\n",
      (t) => t.endsWith("a /k"),
    );
    assert.equal(kept.closed, false);
    assert.match(kept.text, /\r\nconnection: keep-alive\r\n/i);
  });
});

Deno.test("ClientConn answers 400 to a malformed request and 431 to an oversized head", async () => {
  await withWeb({ headerBytesMax: 1024 }, async (port) => {
    const bad = await exchange(port, "GET / HTTP/1.1\r\nHost: web.test\r\nBad Header\r\n\r\n");
    assert.equal(bad.closed, true);
    assert.match(bad.text, /^HTTP\/1\.1 400 /);
    const smuggle = await exchange(
      port,
      "POST / HTTP/1.1\r\nHost: web.test\r\nContent-Length: 3\r\n" +
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert.match(smuggle.text, /^HTTP\/1\.1 400 /);
    const big = await exchange(
      port,
      `GET / HTTP/1.1\r\nHost: web.test\r\nX-Big: ${"b".repeat(2000)}\r\n\r\n`,
    );
    assert.equal(big.closed, true);
    assert.match(big.text, /^HTTP\/1\.1 431 /);
  });
});

Deno.test("ClientConn answers Expect: 100-continue before the body", async () => {
  await withWeb({}, async (port) => {
    const text = await new Promise<string>((resolve, reject) => {
      const c = net.connect(port, "127.0.0.1", () => {
        c.write(
          "POST /up HTTP/1.1\r\nHost: web.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
        );
      });
      let got = "";
      c.on("data", (d) => {
        got += d;
        if (got.startsWith("HTTP/1.1 100 Continue\r\n\r\n") && !got.includes("200")) {
          c.write("body");
        }
        if (got.endsWith("a /up")) {
          c.destroy();
          resolve(got);
        }
      });
      c.on("error", reject);
    });
    assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  });
});

Deno.test("ClientConn closes idle keep-alive connections and answers 408 to a stalled head", async () => {
  await withWeb({ keepAliveTimeoutMs: 50, headersTimeoutMs: 50 }, async (port) => {
    const idle = await exchange(port, "GET /i HTTP/1.1\r\nHost: web.test\r\n\r\n");
    assert.equal(idle.closed, true, "closed by the proxy after the keep-alive timeout");
    assert.match(idle.text, /a \/i$/);
    const stalled = await exchange(port, "GET /s HTTP/1.1\r\nHost: web");
    assert.equal(stalled.closed, true);
    assert.match(stalled.text, /^HTTP\/1\.1 408 /);
  });
});

Deno.test("HttpProxy relays a large response to a slow reader and a large upload intact", async () => {
  const big = 4 * 1024 * 1024;
  const a = await startBackend("a", (req, res) => {
    let n = 0;
    req.on("data", (d: Uint8Array) => n += d.length);
    req.on("end", () => {
      if (req.method === "POST") return res.end(`got ${n}`);
      res.writeHead(200, { "content-length": String(big) });
      res.end(Buffer.alloc(big, 120));
    });
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      const got = await new Promise<number>((resolve, reject) => {
        const c = net.connect(port, "127.0.0.1", () => {
          c.write("GET /big HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n");
        });
        let bytes = 0;
        let headBytes = -1;
        // Read slowly: pause after each chunk so the proxy meets backpressure.
        c.on("data", (d) => {
          if (headBytes < 0) headBytes = bytes + d.indexOf("\r\n\r\n") + 4;
          bytes += d.length;
          c.pause();
          setTimeout(() => c.resume(), 1);
        });
        c.on("end", () => resolve(bytes - headBytes));
        c.on("error", reject);
      });
      assert.equal(got, big);
      const upload = await new Promise<string>((resolve, reject) => {
        const req = http.request({
          host: "127.0.0.1",
          port,
          method: "POST",
          agent: false,
          headers: { host: "web.test" },
        }, (res) => {
          let text = "";
          res.on("data", (d) => text += d);
          res.on("end", () => resolve(text));
        });
        req.on("error", reject);
        for (let i = 0; i < 64; i++) req.write(Buffer.alloc(64 * 1024, 121));
        req.end();
      });
      assert.equal(upload, `got ${64 * 64 * 1024}`);
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy drops the instance connection when the client leaves mid-response", async () => {
  const closed = Promise.withResolvers<void>();
  const a = await startBackend("a", (req, res) => {
    req.resume();
    res.writeHead(200, { "content-length": "100" });
    res.write("part");
    res.once("close", () => closed.resolve());
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      await new Promise<void>((resolve, reject) => {
        const c = net.connect(port, "127.0.0.1", () => {
          c.write("GET / HTTP/1.1\r\nHost: web.test\r\n\r\n");
        });
        c.on("data", (d) => {
          if (d.toString().includes("part")) {
            c.destroy();
            resolve();
          }
        });
        c.on("error", reject);
      });
      await closed.promise; // the backend saw its connection close: it was not pooled
    });
  } finally {
    await a.close();
  }
});

Deno.test("ClientConn streams pipelined request bodies to their own requests", async () => {
  await withWeb({}, async (port) => {
    const wire = "POST /p1 HTTP/1.1\r\nHost: web.test\r\nContent-Length: 3\r\n\r\nabc" +
      "POST /p2 HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n" +
      "GET /p3 HTTP/1.1\r\nHost: web.test\r\n\r\n";
    const { text } = await exchange(port, wire, (t) => t.includes("a /p3"));
    assert.equal(count(text, "HTTP/1.1 200 OK"), 3);
    assert.ok(text.indexOf("a /p1") < text.indexOf("a /p2"));
  });
});

Deno.test("ClientConn answers 400 to an HTTP/1.1 request without Host or with two", async () => {
  const b = await rawBackend(() => ({ wire: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" }));
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      const none = await rawClient(port, "GET / HTTP/1.1\r\n\r\n");
      assert.match(none.received, /^HTTP\/1\.1 400 [^]*\r\n\r\nbad request: no Host\n$/);
      assert.equal(none.closed, true);
      const two = await rawClient(
        port,
        "GET / HTTP/1.1\r\nHost: web.test\r\nHost: other.test\r\n\r\nGET / HTTP/1.1\r\n\r\n",
      );
      assert.match(two.received, /^HTTP\/1\.1 400 [^]*\r\n\r\nbad request: more than one Host\n$/);
      const old = await rawClient(port, "GET /old HTTP/1.0\r\n\r\n");
      assert.match(old.received, /^HTTP\/1\.1 404 /, "HTTP/1.0 without Host: routed (no route)");
      const ok = await rawClient(port, "GET /one HTTP/1.1\r\nHost: web.test\r\n\r\n", {
        until: (got) => got.endsWith("ok"),
      });
      assert.match(ok.received, /^HTTP\/1\.1 200 /);
      assert.deepEqual(b.heads.map((h) => h.split("\r\n")[0]), ["GET /one HTTP/1.1"]);
    });
  } finally {
    await b.close();
  }
});
