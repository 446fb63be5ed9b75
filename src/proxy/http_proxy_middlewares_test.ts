// HttpProxy with route settings in instance meta (the real middleware order), over sockets:
// strip-prefix, basic auth through the verifier thread, response headers on the proxy's own 502.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { IncomingMessage } from "node:http";
import net from "node:net";
import { rawClient, request, spec, startBackend, TestStore, withProxy } from "./_testing.ts";
import { unusedPort } from "../../test/ports.ts";

/** htpasswd -nbB -C 4 bob hunter2 */
const BOB = "$2y$04$kaAwnn/Ky58PrgaO9aW9vuMtPsyE3U3RtV9HmHdxqbBizysAxSuEO";

async function echoBackend() {
  const seen: { url: string; headers: IncomingMessage["headers"] }[] = [];
  const b = await startBackend("a", (req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers });
    res.setHeader("Server", "echo");
    res.end(req.url);
  });
  return { b, seen };
}

Deno.test("HttpProxy: berth.http.strip-prefix sends the path without the route's prefix", async () => {
  const { b, seen } = await echoBackend();
  const ts = new TestStore();
  ts.register(spec({
    id: "web-a",
    port: b.port,
    httpPath: "/api",
    meta: { "berth.http.strip-prefix": "true" },
  }));
  try {
    await withProxy(ts, {}, async (port) => {
      const r = await request(port, "/api/users?id=7", {
        headers: { "X-Forwarded-Prefix": "/spoofed" },
      });
      assert.deepEqual([r.status, r.body], [200, "/users?id=7"]);
      assert.equal(seen[0]!.headers["x-forwarded-prefix"], "/api");
      assert.equal((await request(port, "/api")).body, "/");
      assert.equal((await request(port, "/apix")).status, 404, "no route: not stripped either");
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy: berth.http.auth.basic checks on the verifier thread; the instance sees no password", async () => {
  const { b, seen } = await echoBackend();
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port, meta: { "berth.http.auth.basic": `bob:${BOB}` } }));
  const auth = (up: string) => ({ Authorization: `Basic ${Buffer.from(up).toString("base64")}` });
  try {
    await withProxy(ts, {}, async (port) => {
      const none = await request(port, "/x");
      assert.equal(none.status, 401);
      assert.equal(none.headers["www-authenticate"], 'Basic realm="berth", charset="UTF-8"');
      assert.equal((await request(port, "/x", { headers: auth("bob:hunter3") })).status, 401);
      assert.equal(seen.length, 0, "no instance saw a refused request");
      const ok = await request(port, "/x", { headers: auth("bob:hunter2") });
      assert.deepEqual([ok.status, ok.body], [200, "/x"]);
      assert.equal(seen[0]!.headers.authorization, undefined);
      assert.equal(seen[0]!.headers["x-forwarded-user"], "bob");
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy: response headers are set and removed on the instance's and the proxy's 502", async () => {
  const { b } = await echoBackend();
  const ts = new TestStore();
  const meta = {
    "berth.http.response-header.X-Frame-Options": "DENY",
    "berth.http.response-headers.remove": "Server",
  };
  ts.register(spec({ id: "web-a", port: b.port, meta }));
  const closed = await unusedPort();
  ts.register(
    spec({ id: "gone-a", service: "gone", port: closed, httpHosts: ["gone.test"], meta }),
  );
  try {
    await withProxy(ts, {}, async (port) => {
      const r = await request(port, "/x");
      assert.equal(r.status, 200);
      assert.equal(r.headers["x-frame-options"], "DENY");
      assert.equal(r.headers.server, undefined);
      const bad = await request(port, "/x", { host: "gone.test" });
      assert.equal(bad.status, 502);
      assert.equal(bad.headers["x-frame-options"], "DENY");
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy: berth.http.ratelimit comes before basic-auth, so wrong passwords take tokens", async () => {
  const { b, seen } = await echoBackend();
  const ts = new TestStore();
  ts.register(spec({
    id: "guarded-a",
    service: "guarded", // its own buckets in the process's table
    port: b.port,
    meta: { "berth.http.auth.basic": `bob:${BOB}`, "berth.http.ratelimit": "1/m,burst=2" },
  }));
  const auth = (up: string) => ({ Authorization: `Basic ${Buffer.from(up).toString("base64")}` });
  try {
    await withProxy(ts, {}, async (port) => {
      const guess = () => request(port, "/", { headers: auth("bob:nope") });
      assert.equal((await guess()).status, 401);
      assert.equal((await guess()).status, 401);
      const third = await guess();
      assert.equal(third.status, 429, "past the burst: the ratelimit answers, no bcrypt check");
      assert.equal(third.body.trim(), "too many requests");
      const right = await request(port, "/", { headers: auth("bob:hunter2") });
      assert.equal(right.status, 429, "the bucket is empty for this client");
      assert.equal(seen.length, 0);
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy: a service guarded by allow is not named in its 403 or its 503", async () => {
  const { b } = await echoBackend();
  const ts = new TestStore();
  const meta = { "berth.http.allow": "10.0.0.0/8" };
  ts.register(spec({ id: "secret-a", service: "secret-admin", port: b.port, meta }));
  ts.register(spec({
    id: "down-a",
    service: "secret-down",
    port: b.port,
    httpHosts: ["down.test"],
    meta,
  }));
  ts.check("down-a", "critical");
  try {
    await withProxy(ts, {}, async (port) => {
      const denied = await request(port, "/");
      assert.equal(denied.status, 403);
      assert.doesNotMatch(denied.body, /secret/);
      const down = await request(port, "/", { host: "down.test" });
      assert.deepEqual([down.status, down.body], [503, "no healthy instance\n"]);
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy: Expect: 100-continue is answered only after basic-auth let the request on", async () => {
  const { b, seen } = await echoBackend();
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: b.port, meta: { "berth.http.auth.basic": `bob:${BOB}` } }));
  const post = (auth: string) =>
    "POST /up HTTP/1.1\r\nHost: web.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n" +
    `${auth}\r\n`;
  try {
    await withProxy(ts, {}, async (port) => {
      const refused = await rawClient(port, post(""));
      assert.match(refused.received, /^HTTP\/1\.1 401 /, "no 100 Continue first");
      assert.doesNotMatch(refused.received, /100 Continue/);
      assert.equal(refused.closed, true, "the body it never asked for is not waited for");
      const right = `Authorization: Basic ${Buffer.from("bob:hunter2").toString("base64")}\r\n`;
      const ok = await new Promise<string>((resolve, reject) => {
        const c = net.connect(port, "127.0.0.1", () => c.write(post(right)));
        let got = "";
        c.on("data", (d) => {
          got += d;
          if (got === "HTTP/1.1 100 Continue\r\n\r\n") c.write("body");
          if (got.endsWith("/up")) {
            c.destroy();
            resolve(got);
          }
        });
        c.on("error", reject);
      });
      assert.match(ok, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
      assert.equal(seen.length, 1);
    });
  } finally {
    await b.close();
  }
});

Deno.test("HttpProxy: berth.http.redirect comes before basic-auth (no credentials asked on the old host)", async () => {
  const { b, seen } = await echoBackend();
  const ts = new TestStore();
  ts.register(spec({
    id: "web-a",
    port: b.port,
    httpHosts: ["www.example.com", "example.com"],
    meta: {
      "berth.http.auth.basic": `bob:${BOB}`,
      "berth.http.redirect": "^http://www\\.(.*) http://$1 301",
    },
  }));
  try {
    await withProxy(ts, {}, async (port) => {
      const old = await request(port, "/a", { host: "www.example.com" });
      assert.deepEqual([old.status, old.headers.location], [301, "http://example.com/a"]);
      assert.equal((await request(port, "/a", { host: "example.com" })).status, 401);
      assert.equal(seen.length, 0);
    });
  } finally {
    await b.close();
  }
});
