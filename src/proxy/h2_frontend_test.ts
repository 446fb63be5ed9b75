/**
 * Tests of `H2Frontend` against a fake dispatch, raw frames where node:http2's client cannot
 * send what an attacker would. Over 500 lines: one file for the frontend's every limit (streams,
 * header list, rapid reset, idle, flow control both ways, close), kept beside the unit they test.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import type { ClientRequest } from "./client_conn.ts";
import type { ConnInfo } from "./conn_info.ts";
import type { Dispatch } from "./h2_frontend.ts";
import {
  FRAME,
  frame,
  getFrame,
  h2Connect,
  h2Request,
  RawH2Client,
  requestBlock,
  rstFrame,
  withH2,
} from "./_h2_testing.ts";

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_REFUSED_STREAM } = http2.constants;

const GET = { ":method": "GET", ":path": "/", ":authority": "web.test" };

function bytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 11)) & 0xff;
  return b;
}

/** Waits until `cond()` holds (a test failure after 5 s, never a hang). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A dispatch that answers `200 METHOD URL`, or echoes a request body back as it streams in. */
function echo(seen: { req: ClientRequest; conn: ConnInfo }[] = []): Dispatch {
  return (req, res, conn) => {
    seen.push({ req, conn });
    const body = req.body;
    res.writeHead(200, "OK", ["content-type", "text/plain", "X-Method", req.method]);
    if (body === null) return res.end(Buffer.from(`${req.method} ${req.url}`));
    body.on("data", (d: Buffer) => {
      if (!res.write(d)) {
        body.pause();
        res.once("drain", () => body.resume());
      }
    });
    body.once("end", () => res.end());
  };
}

Deno.test("H2Frontend maps a stream's pseudo-headers to a request and answers on its stream", async () => {
  const seen: { req: ClientRequest; conn: ConnInfo }[] = [];
  await withH2({ dispatch: echo(seen) }, async (port) => {
    const client = h2Connect(port);
    try {
      const a = await h2Request(client, {
        ...GET,
        ":path": "/a/b?c=1",
        "cookie": ["x=1", "y=2"],
        "x-custom": "v",
      });
      assert.equal(a.status, 200);
      assert.equal(a.body.toString(), "GET /a/b?c=1");
      assert.equal(a.headers["x-method"], "GET");
      assert.equal(seen.length, 1);
      const { req, conn } = seen[0]!;
      assert.equal(req.method, "GET");
      assert.equal(req.url, "/a/b?c=1");
      assert.equal(req.body, null);
      assert.equal(req.remoteAddress, "127.0.0.1");
      assert.deepEqual(req.rawHeaders.slice(0, 4), ["host", "web.test", "cookie", "x=1; y=2"]);
      assert.ok(req.rawHeaders.includes("x-custom"));
      assert.ok(!req.rawHeaders.some((n) => n.startsWith(":")));
      assert.deepEqual(conn, {
        secure: true,
        alpn: "h2",
        servername: "web.test",
        multiplexed: true,
      });
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend drops connection-specific response headers (illegal in HTTP/2)", async () => {
  const dispatch: Dispatch = (_req, res) => {
    res.writeHead(200, "", [
      "Connection",
      "close",
      "Keep-Alive",
      "timeout=5",
      "Transfer-Encoding",
      "chunked",
      "Upgrade",
      "h2c",
      "Set-Cookie",
      "a=1",
      "Set-Cookie",
      "b=2",
    ]);
    res.end(Buffer.from("ok"));
  };
  await withH2({ dispatch }, async (port) => {
    const client = h2Connect(port);
    try {
      const a = await h2Request(client, GET);
      assert.equal(a.status, 200);
      assert.equal(a.body.toString(), "ok");
      for (const h of ["connection", "keep-alive", "transfer-encoding", "upgrade"]) {
        assert.equal(a.headers[h], undefined, h);
      }
      assert.deepEqual(a.headers["set-cookie"], ["a=1", "b=2"]);
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend streams a large request body and a large response both ways", async () => {
  const seen: { req: ClientRequest; conn: ConnInfo }[] = [];
  await withH2({ dispatch: echo(seen) }, async (port) => {
    const client = h2Connect(port);
    try {
      const data = bytes(5 * 1024 * 1024 + 17);
      const a = await h2Request(client, { ...GET, ":method": "POST" }, data);
      assert.equal(a.status, 200);
      assert.equal(a.rstCode, 0);
      assert.ok(a.body.equals(data));
      assert.equal(seen[0]!.req.body?.complete, true);
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend answers HEAD, 204 and 304 without a body", async () => {
  const dispatch: Dispatch = (req, res) => {
    const status = req.url === "/204" ? 204 : req.url === "/304" ? 304 : 200;
    res.writeHead(status, "", ["content-length", status === 200 ? "5" : "0"]);
    assert.equal(res.write(Buffer.from("hello")), true);
    res.end(Buffer.from("x"));
  };
  await withH2({ dispatch }, async (port) => {
    const client = h2Connect(port);
    try {
      const head = await h2Request(client, { ...GET, ":method": "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.headers["content-length"], "5");
      assert.equal(head.body.length, 0);
      assert.equal(head.rstCode, 0);
      for (const path of ["/204", "/304"]) {
        const a = await h2Request(client, { ...GET, ":path": path });
        assert.equal(a.status, Number(path.slice(1)));
        assert.equal(a.body.length, 0);
        assert.equal(a.rstCode, 0);
      }
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend sends trailers to a client that sent te: trailers, and only then", async () => {
  const dispatch: Dispatch = (_req, res) => {
    res.writeHead(200, "", ["content-type", "application/grpc"]);
    res.write(Buffer.from("msg"));
    res.writeTrailers?.(["Grpc-Status", "0", "grpc-message", "fine"]);
    res.end();
  };
  await withH2({ dispatch }, async (port) => {
    const client = h2Connect(port);
    try {
      const a = await h2Request(client, { ...GET, te: "trailers" });
      assert.equal(a.body.toString(), "msg");
      assert.equal(a.trailers?.["grpc-status"], "0");
      assert.equal(a.trailers?.["grpc-message"], "fine");
      const b = await h2Request(client, GET);
      assert.equal(b.body.toString(), "msg");
      assert.equal(b.trailers, null);
      assert.equal(b.rstCode, 0);
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend refuses CONNECT (405) and a Host naming another authority (400)", async () => {
  const seen: { req: ClientRequest; conn: ConnInfo }[] = [];
  await withH2({ dispatch: echo(seen) }, async (port) => {
    const client = h2Connect(port);
    try {
      const c = await h2Request(client, { ":method": "CONNECT", ":authority": "web.test:443" });
      assert.equal(c.status, 405);
      const h = await h2Request(client, { ...GET, host: "other.test" });
      assert.equal(h.status, 400);
      assert.match(h.body.toString(), /Host differs/);
      assert.equal(seen.length, 0);
      assert.equal((await h2Request(client, GET)).status, 200);
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend answers an oversized header list 431 on its stream; the others go on", async () => {
  await withH2({ dispatch: echo(), headerListBytesMax: 4096 }, async (port) => {
    const client = h2Connect(port);
    try {
      // Sent at once: before the client acknowledged the server's SETTINGS, nghttp2 enforces
      // no header list size, the frontend does.
      const slow = h2Request(client, { ...GET, ":path": "/first" });
      const big = h2Request(client, { ...GET, "x-big": "a".repeat(6000) });
      const [first, refused] = await Promise.all([slow, big]);
      assert.equal(first.status, 200);
      assert.equal(refused.status, 431);
      // After the SETTINGS acknowledgement nghttp2 resets such a stream itself.
      const again = await h2Request(client, { ...GET, "x-big": "a".repeat(6000) });
      assert.ok(again.status === 431 || again.rstCode === NGHTTP2_ENHANCE_YOUR_CALM);
      const after = await h2Request(client, { ...GET, ":path": "/after" });
      assert.equal(after.status, 200);
      assert.equal(after.body.toString(), "GET /after");
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend refuses streams over the concurrent-stream limit", async () => {
  const held: (() => void)[] = [];
  const dispatch: Dispatch = (_req, res) => {
    held.push(() => {
      res.writeHead(200, "", []);
      res.end(Buffer.from("ok"));
    });
  };
  await withH2({ dispatch, streamsMax: 3 }, async (port) => {
    // node:http2's client queues streams over the server's limit; a raw client does not.
    const raw = await RawH2Client.connect(port);
    try {
      const ids = [1, 3, 5, 7, 9, 11];
      raw.send(...ids.map((id) => getFrame(id, requestBlock("/", "web.test"))));
      await until(() => raw.resets().size === 3, "3 refused streams");
      assert.equal(held.length, 3);
      for (const code of raw.resets().values()) assert.equal(code, NGHTTP2_REFUSED_STREAM);
      for (const fn of held) fn();
      await until(() => raw.answered().size === 3, "3 answers");
      assert.equal(raw.goawayCode, null);
    } finally {
      raw.close();
    }
  });
});

Deno.test("H2Frontend aborts the request of a stream the client cancels", async () => {
  let aborted = 0;
  let dispatched = 0;
  const dispatch: Dispatch = (_req, res) => {
    dispatched++;
    res.onAbort = () => aborted++;
  };
  await withH2({ dispatch }, async (port) => {
    const client = h2Connect(port);
    try {
      const req = client.request(GET);
      req.on("error", () => {});
      await until(() => dispatched === 1, "the request");
      req.close(NGHTTP2_CANCEL);
      await until(() => aborted === 1, "onAbort");
    } finally {
      client.close();
    }
  });
});

/**
 * The rapid-reset attack (CVE-2023-44487) with node:http2's client: open a stream, cancel it
 * at once, again. Resolves with the GOAWAY code the client got (null: none) and how many
 * streams it opened.
 */
async function rapidReset(port: number, streamsMax: number): Promise<[number | null, number]> {
  const client = h2Connect(port);
  let goaway: number | null = null;
  client.on("goaway", (code: number) => goaway = code);
  let opened = 0;
  try {
    while (opened < streamsMax && !client.destroyed && !client.closed && goaway === null) {
      const req = client.request(GET);
      req.on("error", () => {});
      opened++;
      // Deno's client sends no RST_STREAM for a stream closed in the tick that opened it.
      await new Promise((r) => setTimeout(r, 0));
      req.close(NGHTTP2_CANCEL);
    }
    await until(() => goaway !== null || client.destroyed, "GOAWAY");
  } finally {
    client.destroy();
  }
  return [goaway, opened];
}

Deno.test("H2Frontend closes a connection that keeps cancelling new streams (rapid reset) with GOAWAY ENHANCE_YOUR_CALM; other clients go on", async () => {
  let dispatched = 0;
  let aborted = 0;
  const dispatch: Dispatch = (req, res, conn) => {
    dispatched++;
    if (req.url === "/ok") return echo()(req, res, conn);
    res.onAbort = () => aborted++; // stands for the upstream attempt the proxy aborts
  };
  await withH2({ dispatch, rapidResetsMax: 20 }, async (port) => {
    const other = h2Connect(port);
    try {
      assert.equal((await h2Request(other, { ...GET, ":path": "/ok" })).status, 200);
      const [goaway, opened] = await rapidReset(port, 1000);
      assert.equal(goaway, NGHTTP2_ENHANCE_YOUR_CALM);
      assert.ok(opened > 20 && opened < 1000, `opened ${opened}`);
      await until(() => aborted === dispatched - 1, "every cancelled request aborted");
      const after = await Promise.all(
        Array.from({ length: 10 }, () => h2Request(other, { ...GET, ":path": "/ok" })),
      );
      assert.deepEqual(after.map((a) => a.status), Array(10).fill(200));
    } finally {
      other.close();
    }
  });
});

Deno.test("H2Frontend lets a client cancel streams below the rapid-reset budget", async () => {
  const dispatch: Dispatch = (req, res, conn) => {
    if (req.url === "/ok") echo()(req, res, conn);
  };
  await withH2({ dispatch, rapidResetsMax: 20 }, async (port) => {
    const client = h2Connect(port);
    let goaway: number | null = null;
    client.on("goaway", (code: number) => goaway = code);
    try {
      for (let i = 0; i < 20; i++) {
        const req = client.request(GET);
        req.on("error", () => {});
        await new Promise((r) => setTimeout(r, 0));
        req.close(NGHTTP2_CANCEL);
      }
      assert.equal((await h2Request(client, { ...GET, ":path": "/ok" })).status, 200);
      assert.equal(goaway, null);
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend closes a raw client resetting each stream in the write that opens it", async () => {
  let dispatched = 0;
  await withH2({ dispatch: () => dispatched++, rapidResetsMax: 50 }, async (port) => {
    const raw = await RawH2Client.connect(port);
    try {
      for (let id = 1; id < 2000 && !raw.closed; id += 2) {
        raw.send(getFrame(id, requestBlock("/", "web.test")), rstFrame(id, NGHTTP2_CANCEL));
        if (id % 64 === 1) await new Promise((r) => setTimeout(r, 1));
      }
      await until(() => raw.closed, "the connection closed");
      assert.equal(raw.goawayCode, NGHTTP2_ENHANCE_YOUR_CALM);
      assert.ok(dispatched > 50 && dispatched < 1000, `dispatched ${dispatched}`);
    } finally {
      raw.close();
    }
  });
});

Deno.test("H2Frontend lets a response out only as fast as a slow client reads it", async () => {
  const total = 4 * 1024 * 1024;
  const data = bytes(total);
  let written = 0;
  let blockedAt = -1;
  const dispatch: Dispatch = (_req, res) => {
    res.writeHead(200, "", []);
    const pump = () => {
      while (written < total) {
        const chunk = data.subarray(written, written + 16384);
        written += chunk.length;
        if (!res.write(chunk)) {
          if (blockedAt < 0) blockedAt = written;
          return res.once("drain", pump);
        }
      }
      res.end();
    };
    pump();
  };
  await withH2({ dispatch }, async (port) => {
    const client = h2Connect(port);
    try {
      const req = client.request(GET);
      req.pause(); // the client reads nothing for now
      await until(() => blockedAt > 0, "write() returning false");
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(written < 1024 * 1024, `wrote ${written} bytes to a client that reads nothing`);
      const chunks: Buffer[] = [];
      req.on("data", (d: Buffer) => chunks.push(d));
      const ended = new Promise((r) => req.once("end", r));
      req.resume();
      await ended;
      assert.ok(Buffer.concat(chunks).equals(data));
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend reads a request body only as fast as the proxy takes it", async () => {
  const total = 4 * 1024 * 1024;
  const data = bytes(total);
  let body: ClientRequest["body"] = null;
  let answer: () => void = () => {};
  const dispatch: Dispatch = (req, res) => {
    body = req.body;
    body!.pause(); // as the proxy does until an upstream connection takes the body
    answer = () => {
      const chunks: Buffer[] = [];
      body!.on("data", (d: Buffer) => chunks.push(d));
      body!.once("end", () => {
        res.writeHead(200, "", []);
        res.end(Buffer.from(String(Buffer.concat(chunks).equals(data))));
      });
      body!.resume();
    };
  };
  await withH2({ dispatch }, async (port) => {
    const client = h2Connect(port);
    try {
      const answered = h2Request(client, { ...GET, ":method": "POST" }, data);
      await until(() => body !== null, "the request");
      await new Promise((r) => setTimeout(r, 200));
      const buffered = body!.readableLength;
      assert.ok(buffered < 256 * 1024, `${buffered} bytes buffered for a paused body`);
      answer();
      const a = await answered;
      assert.equal(a.status, 200);
      assert.equal(a.body.toString(), "true");
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend resets a stream with NO_ERROR after an answer that left its body unread", async () => {
  const dispatch: Dispatch = (req, res) => {
    req.body?.pause();
    res.writeHead(413, "", ["content-type", "text/plain"]);
    res.end(Buffer.from("too large"));
  };
  await withH2({ dispatch }, async (port, h2) => {
    const client = h2Connect(port);
    try {
      const a = await h2Request(client, { ...GET, ":method": "POST" }, bytes(2 * 1024 * 1024));
      assert.equal(a.status, 413);
      assert.equal(a.body.toString(), "too large");
      assert.equal(a.rstCode, 0);
      await until(() => h2.streams === 0, "the stream closed");
      assert.equal((await h2Request(client, GET)).status, 413); // the connection goes on
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend sends an early answer's trailers before resetting its unread body", async () => {
  // A gRPC error answered before the request body arrived whole: the status is in the trailers.
  const dispatch: Dispatch = (req, res) => {
    req.body?.pause();
    res.writeHead(200, "", ["content-type", "application/grpc"]);
    res.writeTrailers?.(["grpc-status", "14", "grpc-message", "no instance"]);
    res.end();
  };
  await withH2({ dispatch }, async (port) => {
    const client = h2Connect(port);
    try {
      const a = await h2Request(
        client,
        { ...GET, ":method": "POST", te: "trailers" },
        bytes(2 * 1024 * 1024),
      );
      assert.equal(a.status, 200);
      assert.equal(a.trailers?.["grpc-status"], "14");
      assert.equal(a.trailers?.["grpc-message"], "no instance");
      assert.equal(a.rstCode, 0);
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend.close() sends GOAWAY, lets the stream under way finish, takes no new connection", async () => {
  let answer: () => void = () => {};
  const dispatch: Dispatch = (_req, res) => {
    answer = () => {
      res.writeHead(200, "", []);
      res.end(Buffer.from("finished"));
    };
  };
  await withH2({ dispatch }, async (port, h2) => {
    const client = h2Connect(port);
    let goaway: number | null = null;
    client.on("goaway", (code: number) => goaway = code);
    try {
      const inFlight = h2Request(client, GET);
      await until(() => h2.streams === 1, "the request");
      const closed = h2.close();
      await until(() => goaway !== null, "GOAWAY");
      assert.equal(goaway, 0);
      const late = h2Connect(port);
      await until(() => late.destroyed, "a new connection refused");
      answer();
      const a = await inFlight;
      assert.equal(a.status, 200);
      assert.equal(a.body.toString(), "finished");
      await closed;
      assert.equal(h2.sessions, 0);
    } finally {
      client.destroy();
    }
  });
});

Deno.test("H2Frontend.close() ends streams still open after closeGraceMs", async () => {
  await withH2({ dispatch: () => {}, closeGraceMs: 50 }, async (port, h2) => {
    const client = h2Connect(port);
    try {
      const inFlight = h2Request(client, GET);
      await until(() => h2.streams === 1, "the request");
      await h2.close();
      assert.equal(h2.sessions, 0);
      assert.equal((await inFlight).status, 0);
    } finally {
      client.destroy();
    }
  });
});

Deno.test("H2Frontend closes a connection idle for idleTimeoutMs", async () => {
  await withH2({ dispatch: echo(), idleTimeoutMs: 100 }, async (port, h2) => {
    const client = h2Connect(port);
    try {
      assert.equal((await h2Request(client, GET)).status, 200);
      await until(() => client.closed || client.destroyed, "the connection closed");
      // The client may see the close before the server's session runs its own close handler.
      await until(() => h2.sessions === 0, "the server's session gone");
    } finally {
      client.destroy();
    }
  });
});

Deno.test("H2Frontend: a response destroyed mid-body resets its stream only", async () => {
  const dispatch: Dispatch = (req, res, conn) => {
    if (req.url !== "/broken") return echo()(req, res, conn);
    res.writeHead(200, "", []);
    res.write(Buffer.from("part"));
    setTimeout(() => res.destroy(), 10);
  };
  await withH2({ dispatch }, async (port) => {
    const client = h2Connect(port);
    try {
      const broken = await h2Request(client, { ...GET, ":path": "/broken" });
      assert.equal(broken.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
      assert.equal((await h2Request(client, GET)).status, 200);
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend: a dispatch that throws costs its stream, not the connection", async () => {
  const lines: string[] = [];
  const dispatch: Dispatch = (req, res, conn) => {
    if (req.url === "/bug") throw new Error("boom");
    echo()(req, res, conn);
  };
  await withH2({ dispatch, log: (l) => lines.push(l) }, async (port) => {
    const client = h2Connect(port);
    try {
      const bug = await h2Request(client, { ...GET, ":path": "/bug" });
      assert.equal(bug.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
      assert.equal((await h2Request(client, GET)).status, 200);
      assert.match(lines.join("\n"), /boom/);
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend closes a connection whose client ended its side", async () => {
  await withH2({ dispatch: echo() }, async (port, h2) => {
    const raw = await RawH2Client.connect(port);
    try {
      await until(() => h2.sessions === 1, "the session");
      raw.end();
      await until(() => h2.sessions === 0, "the session closed");
    } finally {
      raw.close();
    }
  });
});

Deno.test("H2Frontend survives a client's GOAWAY after hundreds of streams (Deno's node:http2 aborted)", async () => {
  // What h2load does: sequential requests, then GOAWAY with last-stream-id 0. Without
  // GoawayGuard this aborts the whole test process (an nghttp2 assertion).
  await withH2({ dispatch: echo() }, async (port, h2) => {
    const raw = await RawH2Client.connect(port);
    try {
      for (let id = 1; id < 600; id += 2) {
        raw.send(getFrame(id, requestBlock("/", "web.test")));
        await until(() => raw.ended(id), `the response to stream ${id}`);
      }
      const payload = Buffer.alloc(8); // last-stream-id 0, NO_ERROR
      raw.send(frame(FRAME.GOAWAY, 0, 0, payload));
      await until(() => raw.closed && h2.sessions === 0, "the connection closed");
      assert.equal(raw.goawayCode, 0);
    } finally {
      raw.close();
    }
  });
});

Deno.test("H2Frontend answers 408 to a request body idle for requestTimeoutMs", async () => {
  let aborted = 0;
  const dispatch: Dispatch = (req, res, conn) => {
    if (req.body === null) return echo()(req, res, conn);
    req.body.resume();
    res.onAbort = () => aborted++; // stands for the try that has part of the body
  };
  await withH2({ dispatch, requestTimeoutMs: 100 }, async (port) => {
    const client = h2Connect(port);
    try {
      const req = client.request({ ...GET, ":method": "POST" });
      req.on("error", () => {});
      let status = 0;
      req.on("response", (h) => status = Number(h[":status"]));
      req.write("a part of the body, and no more");
      await until(() => status !== 0, "the answer");
      assert.equal(status, 408);
      assert.equal(aborted, 1);
      assert.equal((await h2Request(client, GET)).status, 200); // the connection goes on
    } finally {
      client.close();
    }
  });
});

Deno.test("H2Frontend lets a request body that keeps coming outlast requestTimeoutMs (gRPC streams)", async () => {
  await withH2({ dispatch: echo(), requestTimeoutMs: 500 }, async (port) => {
    const client = h2Connect(port);
    try {
      const req = client.request({ ...GET, ":method": "POST" });
      req.on("error", () => {});
      let status = 0;
      const chunks: Buffer[] = [];
      req.on("response", (h) => status = Number(h[":status"]));
      req.on("data", (d: Buffer) => chunks.push(d));
      const ended = new Promise((r) => req.once("end", r));
      for (let i = 0; i < 8; i++) {
        req.write(`m${i};`);
        await new Promise((r) => setTimeout(r, 80)); // 640 ms in all, idle far below 500 ms
      }
      req.end();
      await ended;
      assert.equal(status, 200);
      assert.equal(Buffer.concat(chunks).toString(), "m0;m1;m2;m3;m4;m5;m6;m7;");
    } finally {
      client.close();
    }
  });
});
