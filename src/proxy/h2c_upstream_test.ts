/**
 * Tests of the h2c/gRPC forwarder against real node:http2 servers (and a raw one where a true
 * RST_STREAM or GOAWAY is needed). Over 500 lines: one file for the forwarder's every path
 * (retries, resends after GOAWAY, trailers, timeouts, ejection), kept beside the unit they test.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { Buffer } from "node:buffer";
import { type ClientRequest, RequestBody } from "./client_conn.ts";
import type { DispatchSink } from "./conn_info.ts";
import { rawClient, request, spec, TestStore, withProxy } from "./_testing.ts";
import { h2cServer } from "./_h2_testing.ts";
import { unusedPort } from "../../test/ports.ts";
import { stickyToken } from "./rendezvous.ts";

type StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

/** A real h2c (HTTP/2 cleartext) server on 127.0.0.1. */
async function h2cBackend(handler: StreamHandler) {
  const seen: http2.IncomingHttpHeaders[] = [];
  const server = await h2cServer((stream, headers) => {
    seen.push(headers);
    handler(stream, headers);
  });
  return { ...server, seen };
}

function frame(type: number, flags: number, id: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(id, 5);
  return Buffer.concat([head, payload]);
}

function rstStream(id: number, code: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(3, 0, id, payload);
}

/**
 * A raw HTTP/2 server speaking just enough of the protocol to reset streams (Deno's node:http2
 * server ends a stream normally where `stream.close(code)` should send RST_STREAM): each request
 * stream gets `answer(id)`'s frames.
 */
async function rawH2Backend(answer: (id: number) => Buffer[]) {
  const sockets = new Set<net.Socket>();
  let streams = 0;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    let buf = Buffer.alloc(0);
    let preface = false;
    s.write(frame(4, 0, 0, new Uint8Array(0))); // SETTINGS
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!preface) {
        if (buf.length < 24) return;
        buf = buf.subarray(24);
        preface = true;
      }
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) return;
        const type = buf[3]!;
        const flags = buf[4]!;
        const id = buf.readUInt32BE(5) & 0x7fffffff;
        buf = buf.subarray(9 + len);
        if (type === 4 && (flags & 1) === 0) s.write(frame(4, 1, 0, new Uint8Array(0))); // ACK
        if (type === 1) {
          streams++;
          for (const f of answer(id)) s.write(f);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    streams: () => streams,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A front for a real h2c server whose first connection refuses everything: GOAWAY with last
 * stream id 0 as soon as a request's HEADERS come (the request was sent, and not processed),
 * then the connection closes; later connections are piped to `to`.
 */
async function goawayFront(to: number) {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  let refused = 0;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    if (connections++ > 0) {
      const up = net.connect(to, "127.0.0.1");
      sockets.add(up);
      up.on("error", () => s.destroy());
      s.pipe(up);
      up.pipe(s);
      return;
    }
    let buf = Buffer.alloc(0);
    s.write(frame(4, 0, 0, new Uint8Array(0))); // SETTINGS
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      // After the 24-byte preface: frames; a HEADERS frame (type 1) is a request.
      for (let at = 24; at + 9 <= buf.length; at += 9 + buf.readUIntBE(at, 3)) {
        if (buf[at + 3] === 1 && refused === 0) {
          refused++;
          const goaway = Buffer.alloc(8); // last stream id 0, NO_ERROR
          s.write(frame(7, 0, 0, goaway));
          setTimeout(() => s.end(), 50);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    refused: () => refused,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** HEADERS `:status: 200` (HPACK static index 8), END_HEADERS. */
const STATUS_200 = (id: number) => frame(1, 4, id, Uint8Array.from([0x88]));

/** Answers `NAME METHOD PATH BODY` with trailers `x-done: yes`. */
function echo(name: string): StreamHandler {
  return (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on("data", (d: Buffer) => chunks.push(d));
    stream.on("end", () => {
      if (stream.destroyed || stream.closed) return; // reset: a test failure, seen by the client
      stream.respond({ ":status": 200, "content-type": "text/plain", "x-name": name }, {
        waitForTrailers: true,
      });
      stream.on("wantTrailers", () => stream.sendTrailers({ "x-done": "yes" }));
      stream.end(`${name} ${headers[":method"]} ${headers[":path"]} ${Buffer.concat(chunks)}`);
    });
  };
}

/** A response sink that keeps what the proxy writes, trailers included (as an h2 client's). */
function sink() {
  let ended!: () => void;
  const chunks: Buffer[] = [];
  const s = {
    status: 0,
    headers: [] as string[],
    trailers: null as string[] | null,
    body: "",
    onChunk: (_c: Buffer) => {},
    done: new Promise<void>((resolve) => ended = resolve),
    destroyed: false,
    headersSent: false,
    writableEnded: false,
    shouldKeepAlive: true,
    onAbort: null as (() => void) | null,
    writeHead(status: number, _reason: string, headers: readonly string[]) {
      s.status = status;
      s.headers = [...headers];
      s.headersSent = true;
    },
    write(chunk: Uint8Array) {
      chunks.push(Buffer.from(chunk));
      s.onChunk(Buffer.from(chunk));
      return true;
    },
    writeTrailers(headers: readonly string[]) {
      s.trailers = [...headers];
    },
    end(chunk?: Uint8Array) {
      if (chunk) chunks.push(Buffer.from(chunk));
      s.body = Buffer.concat(chunks).toString();
      s.writableEnded = true;
      ended();
    },
    destroy() {
      s.destroyed = true;
      ended();
    },
    once() {},
  };
  return s satisfies DispatchSink;
}

function header(list: readonly string[] | null, name: string): string | undefined {
  if (list === null) return undefined;
  for (let i = 0; i + 1 < list.length; i += 2) if (list[i] === name) return list[i + 1];
  return undefined;
}

/** A request body fed by the test (`push`), as a client connection's would be. */
function testBody(): RequestBody {
  return new RequestBody({ resume() {} } as unknown as net.Socket);
}

function req(
  method: string,
  url: string,
  headers: string[],
  body: RequestBody | null = null,
): ClientRequest {
  return { method, url, rawHeaders: headers, remoteAddress: "10.0.0.9", body };
}

const H2C = { "berth.http.proto": "h2c" };
const GRPC_HEADERS = ["Host", "rpc.test", "Content-Type", "application/grpc", "TE", "trailers"];

Deno.test("h2c route: an HTTP/1.1 client reaches an h2c instance (headers, body, X-Forwarded-*)", async () => {
  const b = await h2cBackend(echo("a"));
  const ts = new TestStore();
  ts.register(spec({ id: "a", port: b.port, meta: H2C }));
  try {
    await withProxy(ts, {}, async (port) => {
      const get = await request(port, "/x?y=1", { headers: { "x-custom": "1" } });
      assert.equal(get.status, 200);
      assert.equal(get.body, "a GET /x?y=1 ");
      assert.equal(get.headers["x-name"], "a");
      const post = await request(port, "/p", { method: "POST", body: "hello" });
      assert.equal(post.body, "a POST /p hello");
      const seen = b.seen[0]!;
      assert.equal(seen[":authority"], "web.test");
      assert.equal(seen[":scheme"], "http");
      assert.equal(seen["x-custom"], "1");
      assert.equal(seen["x-forwarded-for"], "127.0.0.1");
      assert.equal(seen["x-forwarded-proto"], "http");
      assert.equal(seen.te, undefined); // an HTTP/1.1 client without TE: trailers
      assert.equal(b.seen[1]!["content-length"], "5");
      // Both requests shared one pooled session.
      assert.equal(b.sessions.size, 1);
    });
  } finally {
    await b.close();
  }
});

Deno.test("h2c route: a chunked HTTP/1.1 body streams as DATA; HEAD gets no body", async () => {
  const b = await h2cBackend(echo("a"));
  const ts = new TestStore();
  ts.register(spec({ id: "a", port: b.port, meta: H2C }));
  try {
    await withProxy(ts, {}, async (port) => {
      const wire = "POST /c HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" +
        "HEAD /h HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n";
      const { received } = await rawClient(port, wire);
      const answers = received.split("HTTP/1.1 200 OK\r\n");
      assert.equal(answers.length, 3, received);
      assert.match(answers[1]!, /a POST \/c abcde/);
      assert.doesNotMatch(answers[2]!, /a HEAD/); // HEAD: headers only
      assert.equal(b.seen[0]!["content-length"], undefined);
      assert.equal(b.seen[0]!["transfer-encoding"], undefined);
    });
  } finally {
    await b.close();
  }
});

Deno.test("h2c route: response trailers reach a sink that can send them; te: trailers is sent", async () => {
  const b = await h2cBackend(echo("a"));
  const ts = new TestStore();
  ts.register(spec({ id: "a", port: b.port, meta: H2C }));
  try {
    await withProxy(ts, {}, async (_port, proxy) => {
      const res = sink();
      proxy.dispatch(req("GET", "/t", ["Host", "web.test", "TE", "trailers"]), res, {
        secure: true,
        alpn: "h2",
      });
      await res.done;
      assert.equal(res.status, 200);
      assert.equal(res.body, "a GET /t ");
      assert.deepEqual(res.trailers, ["x-done", "yes"]);
      assert.equal(b.seen[0]!.te, "trailers");
      assert.equal(b.seen[0]![":authority"], "web.test");
    });
  } finally {
    await b.close();
  }
});

Deno.test("h2c route: an instance's trailers-only gRPC answer reaches an HTTP/2 client as trailers", async () => {
  const b = await h2cBackend((stream) =>
    stream.respond({
      ":status": 200,
      "content-type": "application/grpc",
      "grpc-status": "7",
      "grpc-message": "not you",
      "x-meta": "m",
    }, { endStream: true })
  );
  const ts = new TestStore();
  ts.register(spec({ id: "a", port: b.port, httpHosts: ["rpc.test"], meta: H2C }));
  try {
    await withProxy(ts, {}, async (port, proxy) => {
      const res = sink();
      proxy.dispatch(req("POST", "/t.Echo/Echo", GRPC_HEADERS), res, { secure: true });
      await res.done;
      assert.equal(res.status, 200);
      assert.deepEqual(res.headers, ["content-type", "application/grpc"]);
      assert.equal(header(res.trailers, "grpc-status"), "7");
      assert.equal(header(res.trailers, "grpc-message"), "not you");
      assert.equal(header(res.trailers, "x-meta"), "m");
      // HTTP/1.1 (no trailers): the answer stays trailers-only.
      const h1 = await request(port, "/t.Echo/Echo", {
        host: "rpc.test",
        method: "POST",
        headers: { "content-type": "application/grpc" },
      });
      assert.equal(h1.headers["grpc-status"], "7");
    });
  } finally {
    await b.close();
  }
});

Deno.test("h2c route: both directions stream at once (a bidirectional call)", async () => {
  // The instance answers each request chunk as it comes, before the request has ended.
  const b = await h2cBackend((stream) => {
    stream.respond({ ":status": 200 }, { waitForTrailers: true });
    stream.on("data", (d: Buffer) => stream.write(`re:${d}`));
    stream.on("end", () => stream.end());
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  });
  const ts = new TestStore();
  ts.register(spec({ id: "a", port: b.port, httpHosts: ["rpc.test"], meta: H2C }));
  try {
    await withProxy(ts, {}, async (_port, proxy) => {
      const body = testBody();
      const res = sink();
      const got: string[] = [];
      res.onChunk = (c) => {
        got.push(c.toString());
        // The next message goes only once the answer to the previous one arrived.
        if (got.length < 3) body.push(`m${got.length}`);
        else body.push(null);
      };
      proxy.dispatch(req("POST", "/t.Chat/Chat", GRPC_HEADERS, body), res, { secure: true });
      body.push("m0");
      await res.done;
      assert.deepEqual(got, ["re:m0", "re:m1", "re:m2"]);
      assert.deepEqual(res.trailers, ["grpc-status", "0"]);
    });
  } finally {
    await b.close();
  }
});

Deno.test("h2c route: gRPC requests get grpc-status 14 when no instance passes or none answers", async () => {
  const closed = await unusedPort();
  const ts = new TestStore();
  ts.register(spec({ id: "down", port: closed, httpHosts: ["rpc.test"], meta: H2C }));
  ts.register(spec({ id: "sick", service: "sick", port: closed, httpHosts: ["sick.test"] }));
  ts.check("sick", "critical");
  await withProxy(ts, {}, async (port, proxy) => {
    // An HTTP/2 client's sink: headers, no message, the status in the trailers.
    const unreachable = sink();
    proxy.dispatch(req("POST", "/t.Echo/Echo", GRPC_HEADERS), unreachable, { secure: true });
    await unreachable.done;
    assert.equal(unreachable.status, 200);
    assert.deepEqual(unreachable.headers, ["content-type", "application/grpc"]);
    assert.equal(header(unreachable.trailers, "grpc-status"), "14");
    assert.equal(
      decodeURIComponent(header(unreachable.trailers, "grpc-message")!),
      "bad gateway: service web: instance down: ECONNREFUSED",
    );
    assert.equal(unreachable.body, "");
    const none = sink();
    const grpcPlus = ["Host", "sick.test", "Content-Type", "application/grpc+proto"];
    proxy.dispatch(req("POST", "/x", grpcPlus), none, { secure: true });
    await none.done;
    assert.equal(header(none.trailers, "grpc-status"), "14");
    assert.equal(
      decodeURIComponent(header(none.trailers, "grpc-message")!),
      "no healthy instance of service sick",
    );
    // An HTTP/1.1 client cannot get trailers: a trailers-only answer, the status in the headers.
    const h1 = await request(port, "/x", {
      host: "sick.test",
      method: "POST",
      headers: { "content-type": "application/grpc" },
    });
    assert.equal(h1.status, 200);
    assert.equal(h1.headers["grpc-status"], "14");
    assert.equal(h1.headers["content-length"], "0");
    // A plain request to the same service still gets the plain-text 503.
    const plain = await request(port, "/", { host: "sick.test" });
    assert.equal(plain.status, 503);
    assert.equal(plain.body, "no healthy instance of service sick\n");
  });
});

Deno.test("h2c route: unreachable instances are retried elsewhere and ejected after 3 failures", async () => {
  const b = await h2cBackend(echo("up"));
  const closed = await unusedPort();
  const ts = new TestStore();
  ts.register(spec({ id: "a-down", port: closed, meta: H2C }));
  ts.register(spec({ id: "b-up", port: b.port, meta: H2C }));
  const log: string[] = [];
  try {
    await withProxy(ts, { log: (l) => log.push(l) }, async (port) => {
      for (let i = 0; i < 6; i++) {
        const r = await request(port, `/${i}`);
        assert.equal(r.status, 200);
        assert.equal(r.body, `up GET /${i} `);
      }
      assert.equal(
        log.filter((l) => /instance a-down .* ejected/.test(l)).length,
        1,
        log.join("\n"),
      );
    });
  } finally {
    await b.close();
  }
});

Deno.test("h2c route: a POST whose first instance cannot be reached reaches the next with its whole body", async () => {
  const b = await h2cBackend(echo("up"));
  const closed = await unusedPort();
  const ts = new TestStore();
  ts.register(spec({ id: "a-down", port: closed, meta: H2C }));
  ts.register(spec({ id: "b-up", port: b.port, meta: H2C }));
  try {
    await withProxy(ts, {}, async (port) => {
      // Larger than what is kept for a resend: the body waits for the connection.
      for (const body of ["x".repeat(200_000), "hello"]) {
        const r = await request(port, "/p", { method: "POST", body });
        assert.equal(r.status, 200, r.body.slice(0, 200));
        assert.equal(r.body, `up POST /p ${body}`);
      }
    });
  } finally {
    await b.close();
  }
});

Deno.test("h2c route: no response within the response timeout: 504, or grpc-status 4 for gRPC", async () => {
  const b = await h2cBackend(() => {}); // never answers
  const ts = new TestStore();
  ts.register(spec({ id: "slow", port: b.port, httpHosts: ["web.test"], meta: H2C }));
  try {
    await withProxy(ts, { responseTimeoutMs: 200 }, async (port, proxy) => {
      const plain = await request(port, "/");
      assert.equal(plain.status, 504);
      assert.match(plain.body, /^gateway timeout: service web: instance slow sent no response/);
      const res = sink();
      proxy.dispatch(
        req("POST", "/t.Echo/Echo", ["Host", "web.test", "Content-Type", "application/grpc"]),
        res,
        {
          secure: true,
        },
      );
      await res.done;
      assert.equal(header(res.trailers, "grpc-status"), "4");
    });
  } finally {
    await b.close();
  }
});

Deno.test("h2c route: a started gRPC call silent both ways for the stream idle timeout ends with 14", async () => {
  const b = await h2cBackend((stream) => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" });
    stream.write(Buffer.from([0, 0, 0, 0, 0])); // one empty message, then silence
  });
  const ts = new TestStore();
  ts.register(spec({ id: "a", port: b.port, httpHosts: ["rpc.test"], meta: H2C }));
  try {
    await withProxy(ts, { streamIdleTimeoutMs: 200 }, async (_port, proxy) => {
      const res = sink();
      proxy.dispatch(req("POST", "/t.Echo/Watch", GRPC_HEADERS), res, { secure: true });
      await res.done;
      assert.equal(res.body.length, 5);
      assert.equal(header(res.trailers, "grpc-status"), "14");
      assert.match(
        decodeURIComponent(header(res.trailers, "grpc-message")!),
        /^service web: instance a went silent for the stream idle timeout \(200 ms\)$/,
      );
    });
  } finally {
    await b.close();
  }
});

Deno.test("h2c route: a stream the instance refuses unprocessed goes to another instance", async () => {
  const refusing = await rawH2Backend((
    id,
  ) => [rstStream(id, http2.constants.NGHTTP2_REFUSED_STREAM)]);
  const ok = await h2cBackend(echo("ok"));
  const ts = new TestStore();
  ts.register(spec({ id: "a-refuses", port: refusing.port, meta: H2C }));
  ts.register(spec({ id: "b-ok", port: ok.port, meta: H2C }));
  try {
    await withProxy(ts, {}, async (port) => {
      // POST is not idempotent: only a refused stream may go again.
      for (let i = 0; i < 2; i++) {
        const r = await request(port, "/p", { method: "POST" });
        assert.equal(r.status, 200);
        assert.equal(r.body, "ok POST /p ");
      }
      // Each request is refused by one instance and answered by the other.
      assert.equal(refusing.streams(), 2);
      assert.equal(ok.seen.length, 2);
    });
  } finally {
    await refusing.close();
    await ok.close();
  }
});

Deno.test("h2c route: a request refused by a GOAWAY goes again, body whole, on a new session", async () => {
  const b = await h2cBackend(echo("a"));
  const front = await goawayFront(b.port);
  const ts = new TestStore();
  ts.register(spec({ id: "a", port: front.port, meta: H2C }));
  try {
    await withProxy(ts, {}, async (port) => {
      const r = await request(port, "/p", { method: "POST", body: "hello" });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, "a POST /p hello");
      assert.equal(front.refused(), 1);
      assert.equal(front.connections(), 2);
    });
  } finally {
    await front.close();
    await b.close();
  }
});

Deno.test("h2c route: a POST reset after the instance got it is not sent again (502)", async () => {
  const resetting = await rawH2Backend((
    id,
  ) => [rstStream(id, http2.constants.NGHTTP2_INTERNAL_ERROR)]);
  const ok = await h2cBackend(echo("ok"));
  const ts = new TestStore();
  ts.register(spec({ id: "a-resets", port: resetting.port, meta: H2C }));
  ts.register(spec({ id: "b-ok", port: ok.port, meta: H2C }));
  try {
    await withProxy(ts, {}, async (port) => {
      const r = await request(port, "/p", { method: "POST" });
      assert.equal(r.status, 502);
      assert.equal(r.body, "bad gateway: service web: instance a-resets: RST_STREAM 2\n");
      assert.equal(ok.seen.length, 0);
      // GET is idempotent: it goes to the other instance.
      assert.equal((await request(port, "/g")).body, "ok GET /g ");
    });
  } finally {
    await resetting.close();
    await ok.close();
  }
});

Deno.test("h2c route: a gRPC response reset mid-way ends with grpc-status 14 in the trailers", async () => {
  const b = await rawH2Backend((id) => [
    STATUS_200(id),
    frame(0, 0, id, Uint8Array.from([0, 0, 0, 0, 1, 7])),
    rstStream(id, http2.constants.NGHTTP2_INTERNAL_ERROR),
  ]);
  const ts = new TestStore();
  ts.register(spec({ id: "a", port: b.port, httpHosts: ["rpc.test"], meta: H2C }));
  try {
    await withProxy(ts, {}, async (port, proxy) => {
      const res = sink();
      proxy.dispatch(req("POST", "/t.Echo/Echo", GRPC_HEADERS), res, { secure: true });
      await res.done;
      assert.equal(res.status, 200);
      assert.equal(res.body, "\u0000\u0000\u0000\u0000\u0001\u0007");
      assert.equal(header(res.trailers, "grpc-status"), "14");
      assert.match(
        decodeURIComponent(header(res.trailers, "grpc-message")!),
        /instance a reset the stream mid-response \(RST_STREAM 2\)/,
      );
      // An HTTP/1.1 client cannot be sent trailers: its connection is cut off.
      const cut = await new Promise<string>((resolve) => {
        const c = net.connect(port, "127.0.0.1");
        let got = "";
        c.on("data", (d) => got += d);
        c.on("error", () => {});
        c.on("close", () => resolve(got));
        c.write("GET / HTTP/1.1\r\nHost: rpc.test\r\n\r\n");
      });
      assert.match(cut, /^HTTP\/1\.1 200 /);
      assert.doesNotMatch(cut, /\r\n0\r\n\r\n$/); // no last chunk: the client sees it cut
    });
  } finally {
    await b.close();
  }
});

Deno.test("h2c route: a session the instance ends with GOAWAY is replaced by a new one", async () => {
  const b = await h2cBackend(echo("a"));
  const ts = new TestStore();
  ts.register(spec({ id: "a", port: b.port, meta: H2C }));
  try {
    await withProxy(ts, {}, async (port) => {
      assert.equal((await request(port, "/1")).body, "a GET /1 ");
      const [first] = [...b.sessions];
      await new Promise<void>((r) => first!.close(() => r())); // GOAWAY, then closed
      assert.equal((await request(port, "/2")).body, "a GET /2 ");
      assert.equal(b.sessions.size, 1);
      assert.notEqual([...b.sessions][0], first);
    });
  } finally {
    await b.close();
  }
});

Deno.test("h2c route: berth.lb=sticky_cookie sets the cookie and follows it; berth.http.timeout answers 504", async () => {
  const a = await h2cBackend(echo("a"));
  const b = await h2cBackend(echo("b"));
  const silent = await h2cBackend(() => {}); // never answers
  const ts = new TestStore();
  const meta = { ...H2C, "berth.lb": "sticky_cookie" };
  ts.register(spec({ id: "a", port: a.port, meta }));
  ts.register(spec({ id: "b", port: b.port, meta }));
  ts.register(spec({
    id: "s",
    service: "slow",
    port: silent.port,
    httpHosts: ["slow.test"],
    meta: { ...H2C, "berth.http.timeout": "1s" },
  }));
  try {
    await withProxy(ts, { responseTimeoutMs: 5_000 }, async (port) => {
      const first = await request(port, "/");
      const name = first.body.split(" ")[0]!;
      assert.equal(
        first.headers["set-cookie"]?.[0],
        `berth_web=${stickyToken(name)}; Path=/; HttpOnly; SameSite=Lax`,
      );
      for (const other of ["a", "b", "a"]) {
        const r = await request(port, "/", {
          headers: { cookie: `berth_web=${stickyToken(other)}` },
        });
        assert.equal(r.body.split(" ")[0], other);
        assert.equal(r.headers["set-cookie"], undefined);
      }
      const slow = await request(port, "/", { host: "slow.test" });
      assert.equal(slow.status, 504);
      assert.match(slow.body, /instance s sent no response within 1000 ms/);
    });
  } finally {
    await Promise.all([a.close(), b.close(), silent.close()]);
  }
});
