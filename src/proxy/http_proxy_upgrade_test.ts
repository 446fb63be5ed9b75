// HttpProxy and Upgrade requests (WebSocket and the like): tunnelled both ways, or refused.
import assert from "node:assert/strict";
import net from "node:net";
import { rawBackend, rawClient, spec, startBackend, TestStore, withProxy } from "./_testing.ts";
import { unusedPort } from "../../test/ports.ts";
import { CidrList, parseCidr } from "../lib/cidr.ts";
import type { ProxyOptions } from "./proxy_options.ts";

/**
 * Runs `fn` on a proxy to one instance (`web-a`, with `meta`) that answers every request with
 * `wire`; `b.heads` are the request heads it got.
 */
async function withWireInstance(
  wire: string,
  meta: Record<string, string>,
  fn: (port: number, b: { heads: string[] }) => Promise<void>,
  over: Partial<ProxyOptions> = {},
): Promise<void> {
  const b = await rawBackend(() => ({ wire }));
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port, meta }));
  try {
    await withProxy(ts, over, (port) => fn(port, b));
  } finally {
    await b.close();
  }
}

Deno.test("HttpProxy tunnels Upgrade requests both ways, with X-Forwarded-* of its own", async () => {
  const seen = Promise.withResolvers<Record<string, string | string[] | undefined>>();
  // The backend accepts the upgrade and echoes bytes back upper-cased.
  const a = await startBackend("a", undefined, (req, socket, head) => {
    seen.resolve(req.headers);
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    );
    if (head.length > 0) socket.write(head.toString().toUpperCase());
    socket.on("data", (d: Buffer) => socket.write(d.toString().toUpperCase()));
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, {}, async (port) => {
      const text = await new Promise<string>((resolve, reject) => {
        const c = net.connect(port, "127.0.0.1", () => {
          c.write(
            "GET /ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n" +
              "Forwarded: for=1.2.3.4;proto=https\r\nX-Real-IP: 6.6.6.6\r\n" +
              "X-Forwarded-Proto: https\r\n\r\nhello ",
          );
        });
        let got = "";
        let sent = false;
        c.on("data", (d) => {
          got += d;
          if (!sent && got.includes("\r\n\r\n")) {
            sent = true;
            c.write("world");
          }
          if (got.includes("HELLO") && got.includes("WORLD")) {
            c.destroy();
            resolve(got);
          }
        });
        c.on("error", reject);
      });
      assert.match(text, /^HTTP\/1\.1 101 /);
      const h = await seen.promise;
      assert.equal(h["x-forwarded-host"], "web.test");
      assert.equal(h["x-forwarded-for"], "127.0.0.1");
      assert.equal(h["x-forwarded-proto"], "http");
      assert.equal(h.forwarded, undefined);
      assert.equal(h["x-real-ip"], undefined);
      assert.equal(h.upgrade, "echo");
    });
  } finally {
    await a.close();
  }
});

/** Sends an Upgrade request and returns everything the proxy sends until it closes. */
function upgradeReply(port: number, host: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const c = net.connect(port, "127.0.0.1", () => {
      c.write(`GET /ws HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n`);
    });
    let got = "";
    c.on("data", (d) => got += d);
    c.on("end", () => {
      c.destroy();
      resolve(got);
    });
    c.on("error", reject);
  });
}

Deno.test("HttpProxy answers an Upgrade request with 404 or 502 when it cannot tunnel", async () => {
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: await unusedPort() }));
  await withProxy(ts, {}, async (port) => {
    assert.match(
      await upgradeReply(port, "nope.test"),
      /^HTTP\/1\.1 404 [^]*no route for nope\.test\/ws/,
    );
    assert.match(
      await upgradeReply(port, "web.test"),
      /^HTTP\/1\.1 502 [^]*bad gateway: service web: instance web-a: ECONNREFUSED/,
    );
  });
});

Deno.test("HttpProxy forwards a refused upgrade as a plain response and closes, no tunnel", async () => {
  await withWireInstance(
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\nno",
    {},
    async (port, b) => {
      const r = await rawClient(
        port,
        "GET /ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" +
          "GET /internal HTTP/1.1\r\nHost: other.internal\r\n\r\n",
      );
      assert.equal(r.closed, true);
      assert.match(r.received, /^HTTP\/1\.1 400 Bad Request\r\n/);
      assert.match(r.received, /\r\nconnection: close\r\n/);
      assert.doesNotMatch(r.received, /keep-alive/i);
      assert.match(r.received, /\r\n\r\nno$/);
      assert.deepEqual(b.heads.map((h) => h.split("\r\n")[0]), ["GET /ws HTTP/1.1"]);
    },
  );
});

/** htpasswd -nbB -C 4 bob hunter2 */
const BOB = "$2y$04$kaAwnn/Ky58PrgaO9aW9vuMtPsyE3U3RtV9HmHdxqbBizysAxSuEO";
const BOB_AUTH = `Authorization: Basic ${btoa("bob:hunter2")}\r\n`;

Deno.test("HttpProxy serves an Upgrade: h2c request as a plain one, never a tunnel (h2c smuggling)", async () => {
  // An instance that would accept the upgrade: it must never be asked to.
  await withWireInstance(
    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
    { "berth.http.auth.basic": `bob:${BOB}` },
    async (port, b) => {
      const r = await rawClient(
        port,
        "GET / HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade, HTTP2-Settings\r\n" +
          `Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n${BOB_AUTH}\r\n` +
          "GET /admin HTTP/1.1\r\nHost: web.test\r\nX-Forwarded-User: admin\r\n\r\n",
      );
      assert.equal(b.heads.length, 1, "the smuggled request never reached the instance");
      const head = b.heads[0]!.toLowerCase();
      assert.match(head, /^get \/ http\/1\.1\r\n/);
      assert.doesNotMatch(head, /upgrade|http2-settings/);
      assert.match(head, /\r\nx-forwarded-user: bob(\r\n|$)/);
      assert.equal(r.closed, true);
      assert.doesNotMatch(r.received, /HTTP\/1\.1 101/);
    },
  );
});

Deno.test("HttpProxy drops the h2c token and HTTP2-Settings from an upgrade to other protocols too", async () => {
  await withWireInstance(
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
    {},
    async (port, b) => {
      await rawClient(
        port,
        "GET /ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade, HTTP2-Settings\r\n" +
          "Upgrade: h2c, websocket\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
      );
      const head = b.heads[0]!.toLowerCase();
      assert.match(head, /\r\nupgrade: websocket(\r\n|$)/);
      assert.doesNotMatch(head, /h2c|http2-settings:/);
    },
  );
});

Deno.test("HttpProxy says the request's X-Request-Id on the instance's 101 and on its refusal", async () => {
  const loopback = new CidrList([parseCidr("127.0.0.0/8")!]);
  const fresh = /[0-9a-f]{12}-[0-9a-z]+/;
  // By default and from a listed client, its own id is kept; with none, it gets a new one.
  for (
    const [requestIdFrom, id] of [
      [null, /req-42/],
      [loopback, /req-42/],
      [new CidrList([]), fresh],
    ] as const
  ) {
    for (const status of ["101 Switching Protocols", "403 Forbidden"]) {
      const seen: string[] = [];
      await withWireInstance(
        `HTTP/1.1 ${status}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          "X-Request-Id: the-instance's\r\nContent-Length: 0\r\n\r\n",
        {},
        async (port, b) => {
          const r = await rawClient(
            port,
            "GET /ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
              "X-Request-Id: req-42\r\n\r\n",
            { until: (got) => got.includes("\r\n\r\n") },
          );
          const head = r.received.split("\r\n\r\n")[0]!.toLowerCase();
          assert.match(head, new RegExp(`^http/1\\.1 ${status.slice(0, 3)} `));
          const said = /\r\nx-request-id: ([^\r]*)/.exec(head)?.[1] ?? "";
          assert.match(said, new RegExp(`^${id.source}$`), status);
          // The instance was sent the same id.
          seen.push(...b.heads.map((h) => /\r\nx-request-id: ([^\r]*)/i.exec(h)?.[1] ?? ""));
          assert.deepEqual(seen, [said], status);
        },
        { requestIdFrom },
      );
    }
  }
});
