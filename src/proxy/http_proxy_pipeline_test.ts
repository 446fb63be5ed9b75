// HttpProxy and a route's middlewares (middleware/pipeline.ts) and X-Request-Id, over sockets.
import assert from "node:assert/strict";
import net from "node:net";
import type { IncomingMessage } from "node:http";
import type { Middleware, MiddlewarePart } from "./middleware/pipeline.ts";
import { SinkWrapper } from "./middleware/pipeline.ts";
import { rawClient, request, spec, startBackend, TestStore, withProxy } from "./_testing.ts";
import { CidrList, parseCidr } from "../lib/cidr.ts";
import { formatRecord } from "./access_log_format.ts";
import type { RequestRecord } from "./request_record.ts";

const LOOPBACK = new CidrList([parseCidr("127.0.0.0/8")!]);

/** A middleware kind that is on for every route (the proxy's `middlewares` option). */
function part(name: string, m: Omit<Middleware, "name">): MiddlewarePart {
  return { name, build: () => ({ name, ...m }) };
}

/** A backend answering `URL body` and keeping what it saw. */
async function echoBackend() {
  const seen: { url: string; headers: IncomingMessage["headers"]; body: string }[] = [];
  const b = await startBackend("a", (req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => body += d);
    req.on("end", () => {
      seen.push({ url: req.url ?? "", headers: req.headers, body });
      res.end(`${req.url} ${body}`);
    });
  });
  return { b, seen };
}

Deno.test("HttpProxy forwards and returns a new X-Request-Id, keeps a client's sane one (by default, or when requestIdFrom lists it) and replaces an insane one", async () => {
  const { b, seen } = await echoBackend();
  try {
    // The default (no requestIdFrom: any client), then a list that holds the client.
    for (const requestIdFrom of [undefined, LOOPBACK]) {
      seen.length = 0;
      const ts = new TestStore();
      ts.register(spec({ id: "web-a", port: b.port }));
      await withProxy(ts, { requestIdFrom }, async (port) => {
        const fresh = await request(port, "/x");
        const id = fresh.headers["x-request-id"];
        assert.match(String(id), /^[0-9a-f]{12}-[0-9a-z]+$/);
        assert.equal(seen[0]!.headers["x-request-id"], id);
        const next = await request(port, "/x");
        assert.notEqual(next.headers["x-request-id"], id);

        const kept = await request(port, "/x", { headers: { "X-Request-Id": "abc-123" } });
        assert.equal(kept.headers["x-request-id"], "abc-123", String(requestIdFrom));
        assert.equal(seen[2]!.headers["x-request-id"], "abc-123");

        for (const insane of ["has space", "x".repeat(129)]) {
          const r = await request(port, "/x", { headers: { "X-Request-Id": insane } });
          assert.match(String(r.headers["x-request-id"]), /^[0-9a-f]{12}-/);
          assert.equal(seen.at(-1)!.headers["x-request-id"], r.headers["x-request-id"]);
        }
        // The proxy's own answers carry it too.
        const none = await request(port, "/x", { host: "nope.test" });
        assert.equal(none.status, 404);
        assert.match(String(none.headers["x-request-id"]), /^[0-9a-f]{12}-/);
      });
    }
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy replaces the X-Request-Id of a client that requestIdFrom leaves out (none, or a list without it)", async () => {
  const { b, seen } = await echoBackend();
  try {
    // No sources (--request-id-from none), then sources that do not hold the client (127.0.0.1).
    const others = new CidrList([parseCidr("10.0.0.0/8")!]);
    for (const requestIdFrom of [new CidrList([]), others]) {
      const ts = new TestStore();
      ts.register(spec({ id: "web-a", port: b.port }));
      await withProxy(ts, { requestIdFrom }, async (port) => {
        const r = await request(port, "/x", { headers: { "X-Request-Id": "abc-123" } });
        assert.match(String(r.headers["x-request-id"]), /^[0-9a-f]{12}-[0-9a-z]+$/);
        assert.equal(seen.at(-1)!.headers["x-request-id"], r.headers["x-request-id"]);
      });
    }
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy behind a PROXY-protocol balancer keeps an X-Request-Id when the declared client or the balancer is a requestIdFrom source", async () => {
  const { b, seen } = await echoBackend();
  const ask = (src: string) =>
    `PROXY TCP4 ${src} 127.0.0.1 40000 80\r\nGET / HTTP/1.1\r\nHost: web.test\r\n` +
    "X-Request-Id: set-by-lb\r\nConnection: close\r\n\r\n";
  const idOf = (received: string) => /\r\nx-request-id: ([^\r]*)\r\n/i.exec(received)?.[1];
  try {
    // The balancer (127.0.0.1, which sends the header) is not listed: the declared client counts.
    const clients = new CidrList([parseCidr("198.51.100.0/24")!]);
    let ts = new TestStore();
    ts.register(spec({ id: "web-a", port: b.port }));
    await withProxy(ts, { proxyProtocolFrom: LOOPBACK, requestIdFrom: clients }, async (port) => {
      assert.equal(idOf((await rawClient(port, ask("198.51.100.1"))).received), "set-by-lb");
      const other = idOf((await rawClient(port, ask("203.0.113.1"))).received);
      assert.match(String(other), /^[0-9a-f]{12}-[0-9a-z]+$/);
      assert.equal(seen.at(-1)!.headers["x-request-id"], other);
    });
    // The balancer is listed: the id it set is kept, whatever client it declares.
    ts = new TestStore();
    ts.register(spec({ id: "web-a", port: b.port }));
    await withProxy(ts, { proxyProtocolFrom: LOOPBACK, requestIdFrom: LOOPBACK }, async (port) => {
      assert.equal(idOf((await rawClient(port, ask("203.0.113.1"))).received), "set-by-lb");
      assert.equal(seen.at(-1)!.headers["x-request-id"], "set-by-lb");
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy logs nothing about a client's X-Request-Id kept by default or replaced with requestIdFrom none", async () => {
  const { b, seen } = await echoBackend();
  try {
    // The default (any: kept), then none (an empty list: replaced, as the operator asked).
    for (const requestIdFrom of [undefined, new CidrList([])]) {
      const ts = new TestStore();
      ts.register(spec({ id: "web-a", port: b.port }));
      const lines: string[] = [];
      await withProxy(ts, { requestIdFrom, log: (l) => lines.push(l) }, async (port) => {
        for (let i = 0; i < 2; i++) {
          await request(port, "/x", { headers: { "X-Request-Id": `abc-${i}` } });
        }
      });
      const kept = requestIdFrom === undefined;
      assert.equal(seen.at(-1)!.headers["x-request-id"] === "abc-1", kept, String(requestIdFrom));
      assert.deepEqual(lines, [], String(requestIdFrom));
    }
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy logs once that a client's X-Request-Id was replaced when requestIdFrom leaves its address out, naming it", async () => {
  const { b } = await echoBackend();
  const withId = (src: string, id: string) =>
    `PROXY TCP4 ${src} 127.0.0.1 40000 80\r\nGET / HTTP/1.1\r\nHost: web.test\r\n` +
    `X-Request-Id: ${id}\r\nConnection: close\r\n\r\n`;
  const elsewhere = new CidrList([parseCidr("10.9.9.0/24")!]);
  try {
    // Direct clients: the listed one says nothing, the first other one is named, once.
    let ts = new TestStore();
    ts.register(spec({ id: "web-a", port: b.port }));
    let lines: string[] = [];
    await withProxy(ts, { log: (l) => lines.push(l), requestIdFrom: LOOPBACK }, async (port) => {
      await request(port, "/x", { headers: { "X-Request-Id": "kept-1" } });
      assert.deepEqual(lines, []);
    });
    ts = new TestStore();
    ts.register(spec({ id: "web-a", port: b.port }));
    await withProxy(ts, { log: (l) => lines.push(l), requestIdFrom: elsewhere }, async (port) => {
      for (let i = 0; i < 2; i++) {
        await request(port, "/x", { headers: { "X-Request-Id": `abc-${i}` } });
      }
    });
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(
      lines[0]!,
      /^proxy: a request from 127\.0\.0\.1 came with its own X-Request-Id and got a new one \(logged once\): the address is not in --request-id-from /,
    );
    // Behind a PROXY balancer: both addresses named.
    lines = [];
    ts = new TestStore();
    ts.register(spec({ id: "web-a", port: b.port }));
    const opts = { log: (l: string) => lines.push(l), requestIdFrom: elsewhere };
    await withProxy(ts, { ...opts, proxyProtocolFrom: LOOPBACK }, async (port) => {
      await rawClient(port, withId("203.0.113.1", "gw-1"));
    });
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(
      lines[0]!,
      /^proxy: a request from 203\.0\.113\.1 \(PROXY header from 127\.0\.0\.1\) came with its own X-Request-Id .*: neither address is in --request-id-from /,
    );
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy's JSON access-log line keeps a replaced client X-Request-Id as client_request_id, not a kept one", async () => {
  const { b } = await echoBackend();
  try {
    // none (an empty list: replaced), the default (any: kept), a list that holds the client.
    for (const requestIdFrom of [new CidrList([]), undefined, LOOPBACK]) {
      const ts = new TestStore();
      ts.register(spec({ id: "web-a", port: b.port }));
      const lines: string[] = [];
      const observers = [{ end: (r: RequestRecord) => lines.push(formatRecord(r, "json")) }];
      await withProxy(ts, { observers, requestIdFrom }, async (port) => {
        await request(port, "/x", { headers: { "X-Request-Id": "client-7" } });
      });
      const line = JSON.parse(lines[0]!);
      if (requestIdFrom?.cidrs.length === 0) {
        assert.match(line.request_id, /^[0-9a-f]{12}-[0-9a-z]+$/);
        assert.equal(line.client_request_id, "client-7");
      } else {
        assert.equal(line.request_id, "client-7");
        assert.equal("client_request_id" in line, false);
      }
    }
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy answers with its X-Request-Id in place of one the instance sent", async () => {
  const b = await startBackend("a", (_req, res) => {
    res.setHeader("X-Request-Id", "from-instance");
    res.end("ok");
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  try {
    await withProxy(ts, { requestIdFrom: LOOPBACK }, async (port) => {
      const r = await rawClient(
        port,
        "GET / HTTP/1.1\r\nHost: web.test\r\nX-Request-Id: mine\r\nConnection: close\r\n\r\n",
      );
      assert.equal(r.received.match(/x-request-id/gi)?.length, 1);
      assert.match(r.received, /\r\nx-request-id: mine\r\n/i);
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy sends the instance the url and headers the request stages leave", async () => {
  const { b, seen } = await echoBackend();
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  const middlewares = [
    part("strip", {
      request: (s) => {
        s.url = s.url.replace(/^\/api/, "") || "/";
        return null;
      },
    }),
    part("headers", {
      request: (s) => {
        s.headers.push("x-added", `${s.prefix} ${s.client} ${s.requestId}`);
        return null;
      },
    }),
  ];
  try {
    await withProxy(ts, { middlewares }, async (port) => {
      const r = await request(port, "/api/users?q=1", { method: "POST", body: "hello" });
      assert.equal(r.status, 200);
      assert.equal(r.body, "/users?q=1 hello");
      assert.equal(seen[0]!.headers["x-added"], `/ 127.0.0.1 ${r.headers["x-request-id"]}`);
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy: a request stage's answer ends the request before any instance sees it", async () => {
  const { b, seen } = await echoBackend();
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  const middlewares = [
    part("auth", {
      request: (s) =>
        s.req.url === "/open"
          ? null
          : { status: 401, text: "unauthorized", headers: ["www-authenticate", 'Basic realm="x"'] },
    }),
  ];
  try {
    await withProxy(ts, { middlewares }, async (port) => {
      const r = await request(port, "/secret", { method: "POST", body: "x".repeat(100_000) });
      assert.equal(r.status, 401);
      assert.equal(r.headers["www-authenticate"], 'Basic realm="x"');
      assert.match(String(r.headers["x-request-id"]), /-/);
      assert.equal(b.connections, 0);
      assert.equal((await request(port, "/open")).status, 200);
      assert.equal(seen.length, 1);
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy waits for an asynchronous request stage, the body held, then forwards all of it", async () => {
  const { b, seen } = await echoBackend();
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  const middlewares = [
    part("slow-auth", {
      request: async (s) => {
        await new Promise((r) => setTimeout(r, 50));
        return s.req.url === "/deny" ? { status: 403, text: "forbidden" } : null;
      },
    }),
  ];
  try {
    await withProxy(ts, { middlewares }, async (port) => {
      const body = "y".repeat(200_000);
      const r = await request(port, "/ok", { method: "POST", body });
      assert.equal(r.status, 200);
      assert.equal(seen[0]!.body, body);
      assert.equal((await request(port, "/deny", { method: "POST", body })).status, 403);
      assert.equal(seen.length, 1);
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy runs response stages on the instance's response, not on a request stage's answer", async () => {
  const { b } = await echoBackend();
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  const middlewares = [
    part("deny", { request: (s) => s.req.url === "/deny" ? { status: 403, text: "no" } : null }),
    part("tag", {
      response: (_s, res) =>
        new class extends SinkWrapper {
          override writeHead(status: number, reason: string, headers: readonly string[]) {
            super.writeHead(status, reason, [...headers, "x-tag", String(status)]);
          }
        }(res),
    }),
  ];
  try {
    await withProxy(ts, { middlewares }, async (port) => {
      assert.equal((await request(port, "/x")).headers["x-tag"], "200");
      const denied = await request(port, "/deny");
      assert.equal(denied.status, 403);
      assert.equal(denied.headers["x-tag"], undefined);
    });
  } finally {
    await b.close();
  }
});

/** Sends an Upgrade request; resolves with what came back until the proxy closed or 101. */
function upgrade(port: number, path: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const c = net.connect(port, "127.0.0.1", () => {
      c.write(
        `GET ${path} HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n`,
      );
    });
    let got = "";
    c.on("data", (d) => {
      got += d;
      if (got.startsWith("HTTP/1.1 101") && got.includes("\r\n\r\n")) c.destroy();
    });
    c.on("close", () => resolve(got));
    c.on("error", reject);
  });
}

Deno.test("HttpProxy runs the request stages on Upgrade requests: an answer refuses, a rewrite is forwarded", async () => {
  const seen: { url: string; id: string }[] = [];
  const b = await startBackend("a", undefined, (req, socket) => {
    seen.push({ url: req.url ?? "", id: String(req.headers["x-request-id"]) });
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    );
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port }));
  const middlewares = [
    part("allow", {
      request: (s) => s.url === "/deny" ? { status: 403, text: "forbidden" } : null,
    }),
    part("rewrite", {
      request: (s) => {
        s.url = `/v2${s.url}`;
        return null;
      },
    }),
  ];
  try {
    await withProxy(ts, { middlewares }, async (port) => {
      const refused = await upgrade(port, "/deny");
      assert.match(refused, /^HTTP\/1\.1 403 /);
      assert.match(refused, /\r\nx-request-id: [0-9a-f]{12}-/);
      assert.match(await upgrade(port, "/ws"), /^HTTP\/1\.1 101 /);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.url, "/v2/ws");
      assert.match(seen[0]!.id, /^[0-9a-f]{12}-/);
    });
  } finally {
    await b.close();
  }
});
