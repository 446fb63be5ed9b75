// The real middlewares (allow, basic-auth, strip-prefix, request-headers.remove) on the other
// ways a request arrives: HTTP/2 on the HTTPS listener, an h2c route, an Upgrade.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import type net from "node:net";
import {
  rawBackend,
  rawClient,
  request,
  spec,
  startBackend,
  TestStore,
  withProxy,
} from "./_testing.ts";
import { h2Connect, h2Request, withH2Proxy } from "./_h2_testing.ts";

/** htpasswd -nbB -C 4 bob hunter2 */
const BOB = "$2y$04$kaAwnn/Ky58PrgaO9aW9vuMtPsyE3U3RtV9HmHdxqbBizysAxSuEO";
const basic = (up: string) => `Basic ${Buffer.from(up).toString("base64")}`;

Deno.test("HttpProxy over HTTP/2: allow, basic-auth and strip-prefix run as over HTTP/1.1", async () => {
  const a = await startBackend(
    "a",
    (req, res) => res.end(`${req.url} ${req.headers["x-forwarded-user"]}`),
  );
  const ts = new TestStore();
  ts.register(spec({
    id: "web-a",
    port: a.port,
    httpPath: "/api",
    meta: { "berth.http.auth.basic": `bob:${BOB}`, "berth.http.strip-prefix": "true" },
  }));
  ts.register(spec({
    id: "deny-a",
    service: "deny",
    port: a.port,
    httpHosts: ["deny.test"],
    meta: { "berth.http.allow": "10.0.0.0/8" },
  }));
  try {
    await withH2Proxy(ts, {}, async (port) => {
      const c = h2Connect(port);
      try {
        const get = { ":method": "GET", ":authority": "web.test", ":path": "/api/x?q" };
        assert.equal((await h2Request(c, get)).status, 401);
        const ok = await h2Request(c, {
          ...get,
          authorization: basic("bob:hunter2"),
          "x-forwarded-user": "root",
        });
        assert.deepEqual([ok.status, ok.body.toString()], [200, "/x?q bob"]);
        assert.equal(a.seen.at(-1)!.authorization, undefined);
        const denied = await h2Request(c, { ...get, ":authority": "deny.test", ":path": "/" });
        assert.equal(denied.status, 403);
      } finally {
        c.close();
      }
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy to an h2c route: basic-auth, strip-prefix and request-headers.remove apply", async () => {
  const seen: http2.IncomingHttpHeaders[] = [];
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    seen.push(headers);
    stream.respond({ ":status": 200 });
    stream.end("ok");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const ts = new TestStore();
  ts.register(spec({
    id: "web-a",
    port: (server.address() as net.AddressInfo).port,
    httpPath: "/api",
    meta: {
      "berth.http.proto": "h2c",
      "berth.http.auth.basic": `bob:${BOB}`,
      "berth.http.strip-prefix": "true",
      "berth.http.request-headers.remove": "X-Debug",
    },
  }));
  try {
    await withProxy(ts, {}, async (port) => {
      assert.equal((await request(port, "/api/x")).status, 401);
      assert.equal(seen.length, 0);
      const r = await request(port, "/api/x?y", {
        headers: {
          Authorization: basic("bob:hunter2"),
          "X-Debug": "1",
          "X-Forwarded-User": "root",
        },
      });
      assert.equal(r.status, 200);
      const h = seen[0]!;
      assert.equal(h[":path"], "/x?y");
      assert.equal(h["x-debug"], undefined);
      assert.equal(h.authorization, undefined);
      assert.equal(h["x-forwarded-user"], "bob");
    });
  } finally {
    await new Promise((r) => server.close(r));
  }
});

Deno.test("HttpProxy: basic-auth guards an Upgrade; the instance gets the user, not the password", async () => {
  const b = await rawBackend(() => ({
    wire: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
  }));
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port, meta: { "berth.http.auth.basic": `bob:${BOB}` } }));
  const up = (auth: string) =>
    "GET /ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
    `X-Forwarded-User: root\r\n${auth}\r\n`;
  const until = (got: string) => got.includes("\r\n\r\n");
  try {
    await withProxy(ts, {}, async (port) => {
      const refused = await rawClient(port, up(""), { until });
      assert.match(refused.received, /^HTTP\/1\.1 401 /);
      assert.equal(b.heads.length, 0);
      const ok = await rawClient(port, up(`Authorization: ${basic("bob:hunter2")}\r\n`), { until });
      assert.match(ok.received, /^HTTP\/1\.1 101 /);
      const head = b.heads[0]!.toLowerCase();
      assert.match(head, /\r\nx-forwarded-user: bob(\r\n|$)/);
      assert.doesNotMatch(head, /authorization|root/);
    });
  } finally {
    await b.close();
  }
});
