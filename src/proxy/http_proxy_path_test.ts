// HttpProxy and request paths (request_path.ts): routes and middlewares see the normalized
// path, which is also what the instance gets; ambiguous forms get 400. Layout: service `admin`
// at /admin allows 10.0.0.0/8 only, service `pub` serves the rest of the host.
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { rawClient, spec, startBackend, TestStore, withProxy } from "./_testing.ts";
import { h2Connect, h2Request, withH2Proxy } from "./_h2_testing.ts";

async function layout() {
  const seen: { name: string; url: string }[] = [];
  const echo = (name: string) =>
    startBackend(name, (req: IncomingMessage, res) => {
      seen.push({ name, url: req.url ?? "" });
      res.end(`${name} ${req.url}`);
    }, (req, socket) => {
      seen.push({ name, url: req.url ?? "" });
      socket.end("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n");
    });
  const adm = await echo("admin");
  const pub = await echo("pub");
  const ts = new TestStore();
  ts.register(spec({
    id: "admin-a",
    service: "admin",
    port: adm.port,
    httpPath: "/admin",
    meta: { "berth.http.allow": "10.0.0.0/8" },
  }));
  ts.register(spec({ id: "pub-a", service: "pub", port: pub.port }));
  return { ts, seen, close: async () => (await adm.close(), await pub.close()) };
}

/** The status line's code of one HTTP/1.1 request for `target` (sent as is). */
async function status(port: number, target: string, extra = ""): Promise<number> {
  const r = await rawClient(
    port,
    `GET ${target} HTTP/1.1\r\nHost: web.test\r\n${extra}Connection: close\r\n\r\n`,
  );
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(r.received)?.[1] ?? 0);
}

const BYPASSES = ["/x/../admin", "//admin", "/./admin", "/%61dmin", "/admin;x=1", "/admin/./"];
const AMBIGUOUS = ["/admin#x", "/admin%2Fx", "/x%5C..%5Cadmin", "/admin%00", "/..", "/x/..;/admin"];

Deno.test("HttpProxy: HTTP/1.1 requests are routed by their normalized path; ambiguous ones get 400", async () => {
  const { ts, seen, close } = await layout();
  try {
    await withProxy(ts, {}, async (port) => {
      assert.equal(await status(port, "/admin"), 403);
      for (const p of BYPASSES) assert.equal(await status(port, p), 403, p);
      for (const p of AMBIGUOUS) assert.equal(await status(port, p), 400, p);
      assert.deepEqual(seen, [], "no instance saw any of them");
      assert.equal(await status(port, "/y/../pub//a/%7Eb?q=/../x"), 200);
      assert.deepEqual(seen, [{ name: "pub", url: "/pub/a/~b?q=/../x" }], "forwarded normalized");
    });
  } finally {
    await close();
  }
});

Deno.test("HttpProxy: HTTP/2 requests are routed by their normalized path; ambiguous ones get 400", async () => {
  const { ts, seen, close } = await layout();
  try {
    await withH2Proxy(ts, {}, async (port) => {
      const c = h2Connect(port);
      try {
        const get = async (path: string) =>
          (await h2Request(c, { ":method": "GET", ":authority": "web.test", ":path": path }))
            .status;
        for (const p of ["/admin", ...BYPASSES]) assert.equal(await get(p), 403, p);
        for (const p of AMBIGUOUS.filter((p) => !p.includes("#"))) {
          assert.equal(await get(p), 400, p);
        }
        assert.deepEqual(seen, []);
        assert.equal(await get("/a/./b//c"), 200);
        assert.deepEqual(seen, [{ name: "pub", url: "/a/b/c" }]);
      } finally {
        c.close();
      }
    });
  } finally {
    await close();
  }
});

Deno.test("HttpProxy: Upgrade requests are routed by their normalized path; ambiguous ones get 400", async () => {
  const { ts, seen, close } = await layout();
  const up = "Connection: Upgrade\r\nUpgrade: x\r\n";
  try {
    await withProxy(ts, {}, async (port) => {
      for (const p of ["/admin", ...BYPASSES]) assert.equal(await status(port, p, up), 403, p);
      for (const p of AMBIGUOUS) assert.equal(await status(port, p, up), 400, p);
      assert.deepEqual(seen, []);
      assert.equal(await status(port, "/a/../b", up), 101);
      assert.deepEqual(seen, [{ name: "pub", url: "/b" }]);
    });
  } finally {
    await close();
  }
});

Deno.test("HttpProxy: a malformed Host gets 400, never a redirect that reflects it", async () => {
  const { ts, seen, close } = await layout();
  ts.register(spec({
    id: "www-a",
    service: "www",
    port: 1,
    httpHosts: ["www.example.com"],
    meta: { "berth.http.redirect": "^http://www\\.(.*) https://$1 301" },
  }));
  try {
    await withProxy(ts, {}, async (port) => {
      const get = (host: string, up = "") =>
        rawClient(port, `GET /reset HTTP/1.1\r\nHost: ${host}\r\n${up}Connection: close\r\n\r\n`);
      const ok = await get("www.example.com:80");
      assert.match(
        ok.received,
        /^HTTP\/1\.1 301 [^]*\r\nlocation: https:\/\/example\.com:80\/reset/,
      );
      const bad = await get("www.example.com:@evil.test");
      assert.match(bad.received, /^HTTP\/1\.1 400 [^]*malformed Host header/);
      assert.doesNotMatch(bad.received, /evil/);
      const up = await get("web.test:@evil.test", "Connection: Upgrade\r\nUpgrade: x\r\n");
      assert.match(up.received, /^HTTP\/1\.1 400 /);
      assert.deepEqual(seen, []);
    });
  } finally {
    await close();
  }
});
