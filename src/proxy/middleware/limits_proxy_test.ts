/**
 * Compression and rate limit through the whole HttpProxy: a real listener (plain HTTP/1.1,
 * HTTPS with HTTP/1.1, HTTP/2), a route whose instance sets `berth.http.compress` or
 * `berth.http.ratelimit`, and a real backend.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import zlib from "node:zlib";
import { spec, startBackend, TestStore, withProxy } from "../_testing.ts";
import { h2Connect, h2Request, testTls, withH2Proxy } from "../_h2_testing.ts";
import { compressorsRunning } from "./compress.ts";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One GET (of `path`, default `/`) on a fresh connection (HTTPS when `caPem`), the body as bytes. */
function get(
  port: number,
  headers: Record<string, string>,
  opts: { caPem?: string; method?: string; path?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const o = {
      host: "127.0.0.1",
      port,
      path: opts.path ?? "/",
      method: opts.method ?? "GET",
      agent: false,
      headers: { host: "web.test", ...headers },
    };
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on(
        "end",
        () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
      );
      res.on("error", reject);
    };
    const req = opts.caPem === undefined
      ? http.request(o, onResponse)
      : https.request({ ...o, servername: "web.test", ca: opts.caPem }, onResponse);
    req.on("error", reject);
    req.end();
  });
}

/** JSON of about `n` bytes. */
function json(n: number): Buffer {
  const items = [];
  for (let i = 0; items.length * 40 < n; i++) items.push({ id: i, name: `item-${i % 17}` });
  return Buffer.from(JSON.stringify(items));
}

const PAGE = json(20_000);

/** A backend answering PAGE as JSON with a length and an ETag; `/big`: 2 MB streamed in chunks. */
function pageBackend() {
  return startBackend("page", (req, res) => {
    req.resume();
    if (req.url === "/big") {
      res.writeHead(200, { "content-type": "text/plain" });
      let left = 64;
      const more = () => {
        while (left > 0) {
          left--;
          if (!res.write(Buffer.alloc(32 * 1024, `chunk ${left} `))) return res.once("drain", more);
        }
        res.end();
      };
      return more();
    }
    res.writeHead(200, {
      "content-type": "application/json",
      "content-length": String(PAGE.length),
      etag: '"page-1"',
    });
    res.end(PAGE);
  });
}

function compressedStore(port: number, value = "true"): TestStore {
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port, meta: { "berth.http.compress": value } }));
  return ts;
}

/** Runs `fn` on a proxy whose route over pageBackend has `berth.http.compress=value`. */
async function withCompressedPage(value: string, fn: (port: number) => Promise<void>) {
  const b = await pageBackend();
  try {
    await withProxy(compressedStore(b.port, value), {}, fn);
  } finally {
    await b.close();
  }
}

Deno.test("HttpProxy with berth.http.compress: HTTP/1.1 gets gzip or br by Accept-Encoding", async () => {
  await withCompressedPage("true", async (port) => {
    const gz = await get(port, { "accept-encoding": "gzip" });
    assert.equal(gz.status, 200);
    assert.equal(gz.headers["content-encoding"], "gzip");
    assert.equal(gz.headers["content-length"], undefined);
    assert.equal(gz.headers["transfer-encoding"], "chunked");
    assert.equal(gz.headers["etag"], 'W/"page-1"');
    assert.equal(gz.headers["vary"], "Accept-Encoding");
    assert.deepEqual(zlib.gunzipSync(gz.body), PAGE);
    assert.ok(gz.body.length < PAGE.length / 3);

    const br = await get(port, { "accept-encoding": "gzip, deflate, br" });
    assert.equal(br.headers["content-encoding"], "br");
    assert.deepEqual(zlib.brotliDecompressSync(br.body), PAGE);

    const none = await get(port, {});
    assert.equal(none.headers["content-encoding"], undefined);
    assert.equal(none.headers["content-length"], String(PAGE.length));
    assert.equal(none.headers["vary"], "Accept-Encoding");
    assert.deepEqual(none.body, PAGE);

    const head = await get(port, { "accept-encoding": "gzip" }, { method: "HEAD" });
    assert.equal(head.headers["content-encoding"], undefined);
    assert.equal(head.headers["content-length"], String(PAGE.length));
  });
});

Deno.test("HttpProxy with berth.http.compress=gzip: a 2 MB streamed body decodes whole", async () => {
  await withCompressedPage("gzip", async (port) => {
    const r = await get(port, { "accept-encoding": "br;q=1, gzip;q=0.5" }, { path: "/big" });
    assert.equal(r.headers["content-encoding"], "gzip"); // br is not offered
    const body = zlib.gunzipSync(r.body);
    assert.equal(body.length, 64 * 32 * 1024);
    assert.ok(body.subarray(0, 8).toString().startsWith("chunk 63"));
  });
});

Deno.test("HttpProxy with berth.http.compress: HTTPS (HTTP/1.1) and HTTP/2 get it too", async () => {
  const b = await pageBackend();
  try {
    await withH2Proxy(compressedStore(b.port), {}, async (port) => {
      const h1 = await get(port, { "accept-encoding": "gzip" }, { caPem: testTls().caPem });
      assert.equal(h1.headers["content-encoding"], "gzip");
      assert.deepEqual(zlib.gunzipSync(h1.body), PAGE);

      const client = h2Connect(port);
      try {
        const h2 = await h2Request(client, {
          ":method": "GET",
          ":path": "/",
          ":authority": "web.test",
          "accept-encoding": "br",
        });
        assert.equal(h2.status, 200);
        assert.equal(h2.headers["content-encoding"], "br");
        assert.equal(h2.headers["content-length"], undefined);
        assert.deepEqual(zlib.brotliDecompressSync(h2.body), PAGE);
      } finally {
        client.close();
      }
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy with berth.http.ratelimit: a client's burst passes, the rest get 429 and never reach the instance", async () => {
  const b = await startBackend("a");
  const ts = new TestStore();
  // A service name of its own: the buckets are the process's, kept by service.
  const service = `rl${crypto.randomUUID().slice(0, 8)}`;
  ts.register(
    spec({ id: "rl-a", service, port: b.port, meta: { "berth.http.ratelimit": "1/m,burst=3" } }),
  );
  try {
    await withProxy(ts, {}, async (port) => {
      const codes: number[] = [];
      const retry: unknown[] = [];
      for (let i = 0; i < 7; i++) {
        const r = await get(port, {});
        codes.push(r.status);
        if (r.status === 429) retry.push(r.headers["retry-after"]);
      }
      assert.deepEqual(codes, [200, 200, 200, 429, 429, 429, 429]);
      for (const s of retry) assert.ok(Number(s) >= 1 && Number(s) <= 60, String(s));
      assert.equal(b.seen.length, 3);
    });
  } finally {
    await b.close();
  }
});

/** Resolves once no compressor runs; fails after 5 s. */
async function compressorsEnded(): Promise<void> {
  const end = Date.now() + 5_000;
  while (compressorsRunning() !== 0) {
    assert.ok(Date.now() < end, "the compressor outlived its client");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A backend that sends a first piece of text and then nothing: the response stays open. */
async function stalledBackend() {
  const sent = { promise: Promise.withResolvers<void>() };
  const b = await startBackend("slow", (req, res) => {
    req.resume();
    res.writeHead(200, { "content-type": "text/plain" });
    res.write(Buffer.alloc(64 * 1024, "x"), () => sent.promise.resolve());
  });
  return { b, sent };
}

Deno.test("HttpProxy with berth.http.compress: a client that goes away mid-body ends the compressor", async () => {
  const { b, sent } = await stalledBackend();
  try {
    await withProxy(compressedStore(b.port), {}, async (port) => {
      const gotHead = Promise.withResolvers<http.ClientRequest>();
      const req = http.get({
        host: "127.0.0.1",
        port,
        path: "/",
        agent: false,
        headers: { host: "web.test", "accept-encoding": "gzip" },
      }, (res) => {
        assert.equal(res.headers["content-encoding"], "gzip");
        gotHead.resolve(req);
      });
      req.on("error", () => {});
      await gotHead.promise;
      await sent.promise.promise;
      assert.equal(compressorsRunning(), 1);
      // A reset, not a FIN: a half-closed client still gets its response (client_conn.ts).
      req.socket!.resetAndDestroy();
      await compressorsEnded();
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy with berth.http.compress: an HTTP/2 stream reset mid-body ends the compressor", async () => {
  const { b, sent } = await stalledBackend();
  try {
    await withH2Proxy(compressedStore(b.port), {}, async (port) => {
      const client = h2Connect(port);
      try {
        const req = client.request({
          ":method": "GET",
          ":path": "/",
          ":authority": "web.test",
          "accept-encoding": "br",
        });
        req.on("error", () => {});
        const head = await new Promise<http2.IncomingHttpHeaders>((r) => req.once("response", r));
        assert.equal(head["content-encoding"], "br");
        await sent.promise.promise;
        assert.equal(compressorsRunning(), 1);
        req.close(http2.constants.NGHTTP2_CANCEL);
        await compressorsEnded();
      } finally {
        client.close();
      }
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy with berth.http.compress: an HTTP/1.0 client gets the body framed by the close", async () => {
  await withCompressedPage("gzip", async (port) => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (d: Buffer) => chunks.push(d));
    const closed = new Promise((resolve) => socket.once("close", resolve));
    socket.write("GET / HTTP/1.0\r\nHost: web.test\r\nAccept-Encoding: gzip\r\n\r\n");
    await closed;
    const all = Buffer.concat(chunks);
    const split = all.indexOf("\r\n\r\n");
    const head = all.subarray(0, split).toString("latin1").toLowerCase();
    assert.match(head, /^http\/1\.1 200 /);
    assert.match(head, /\r\ncontent-encoding: gzip\r\n/);
    assert.match(head, /\r\nconnection: close(\r\n|$)/);
    assert.doesNotMatch(head, /content-length|transfer-encoding/);
    assert.deepEqual(zlib.gunzipSync(all.subarray(split + 4)), PAGE);
  });
});
