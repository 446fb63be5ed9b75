import assert from "node:assert/strict";
import { unusedPort } from "../../test/ports.ts";
import {
  httpsRequest,
  rawClient,
  request,
  servedCert,
  spec,
  startBackend,
  TestStore,
  withProxy,
} from "./_testing.ts";

const WEB = servedCert(["web.test"]);
const TLS = { listen: { host: "127.0.0.1", port: 0 }, certs: () => [WEB] };
const REDIRECT = { "berth.http.redirect": "https" };

Deno.test("HttpProxy answers plain requests to a berth.http.redirect=https service with a 308 to its HTTPS port", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port, meta: REDIRECT }));
  ts.register(spec({ id: "api-a", service: "api", port: a.port, httpHosts: ["api.test"] }));
  try {
    await withProxy(ts, { tls: TLS }, async (port, proxy) => {
      const tlsPort = proxy.httpsAddress.port;
      const r = await request(port, "/a/b?c=1&d", { host: "web.test:8080" });
      assert.equal(r.status, 308);
      assert.equal(r.headers.location, `https://web.test:${tlsPort}/a/b?c=1&d`);
      const post = await request(port, "/form", { method: "POST", body: "x=1" });
      assert.equal(post.status, 308);
      assert.equal(post.headers.location, `https://web.test:${tlsPort}/form`);
      const upgrade = await rawClient(
        port,
        "GET /ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
      );
      assert.match(upgrade.received, /^HTTP\/1\.1 308 /);
      assert.match(upgrade.received, new RegExp(`location: https://web.test:${tlsPort}/ws\r\n`));
      assert.equal(a.seen.length, 0, "nothing reached the instance");
      // Over HTTPS the request is forwarded; another service is not redirected.
      const secure = await httpsRequest(tlsPort, "/a", { host: "web.test", caPem: WEB.caPem });
      assert.equal(secure.body, "a /a");
      assert.equal((await request(port, "/p", { host: "api.test" })).body, "a /p");
      // ACME challenges are never redirected (no ACME hook here: the instance answers).
      const challenge = await request(port, "/.well-known/acme-challenge/tok");
      assert.equal(challenge.body, "a /.well-known/acme-challenge/tok");
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy does not redirect to https without an HTTPS listener", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port, meta: REDIRECT }));
  try {
    await withProxy(ts, {}, async (port) => {
      assert.equal((await request(port, "/x")).body, "a /x");
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy adds berth.http.hsts to HTTPS responses only, in place of the instance's", async () => {
  const a = await startBackend("a", (_req, res) => {
    res.setHeader("strict-transport-security", "max-age=1");
    res.end("ok");
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port, meta: { "berth.http.hsts": "max-age=600" } }));
  ts.register(spec({ id: "api-a", service: "api", port: a.port, httpHosts: ["api.test"] }));
  const API = servedCert(["api.test"]);
  try {
    await withProxy(ts, { tls: { ...TLS, certs: () => [WEB, API] } }, async (port, proxy) => {
      const tlsPort = proxy.httpsAddress.port;
      const secure = await httpsRequest(tlsPort, "/", { host: "web.test", caPem: WEB.caPem });
      assert.equal(secure.headers["strict-transport-security"], "max-age=600");
      const plain = await request(port, "/");
      assert.equal(plain.headers["strict-transport-security"], "max-age=1");
      const other = await httpsRequest(tlsPort, "/", { host: "api.test", caPem: API.caPem });
      assert.equal(other.headers["strict-transport-security"], "max-age=1");
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy adds berth.http.hsts to its own answers for the service over HTTPS", async () => {
  const ts = new TestStore();
  const meta = { "berth.http.hsts": "max-age=600; includeSubDomains" };
  ts.register(spec({ id: "web-a", port: await unusedPort(), meta }));
  ts.register(spec({ id: "down-a", service: "down", httpHosts: ["down.test"], port: 1, meta }));
  ts.check("down-a", "critical");
  const DOWN = servedCert(["down.test"]);
  await withProxy(ts, { tls: { ...TLS, certs: () => [WEB, DOWN] } }, async (port, proxy) => {
    const tlsPort = proxy.httpsAddress.port;
    const refused = await httpsRequest(tlsPort, "/", { host: "web.test", caPem: WEB.caPem });
    assert.equal(refused.status, 502);
    assert.equal(refused.headers["strict-transport-security"], "max-age=600; includeSubDomains");
    const none = await httpsRequest(tlsPort, "/", { host: "down.test", caPem: DOWN.caPem });
    assert.equal(none.status, 503);
    assert.equal(none.headers["strict-transport-security"], "max-age=600; includeSubDomains");
    const plain = await request(port, "/", { host: "down.test" });
    assert.equal(plain.status, 503);
    assert.equal(plain.headers["strict-transport-security"], undefined);
  });
});

Deno.test("HttpProxy answers ACME HTTP-01 tokens on the plain listener for any host, before routes and redirects", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port, meta: REDIRECT }));
  const asked: string[] = [];
  const acmeHttp01 = (token: string) => {
    asked.push(token);
    return token === "tok_en-1" ? "tok_en-1.thumbprint" : null;
  };
  const PATH = "/.well-known/acme-challenge/";
  try {
    await withProxy(ts, { tls: TLS, acmeHttp01 }, async (port, proxy) => {
      for (const host of ["unrouted.test", "web.test"]) {
        const r = await request(port, `${PATH}tok_en-1`, { host });
        assert.equal(r.status, 200, host);
        assert.equal(r.body, "tok_en-1.thumbprint");
        assert.equal(r.headers["content-type"], "application/octet-stream");
      }
      const head = await request(port, `${PATH}tok_en-1`, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.headers["content-length"], String("tok_en-1.thumbprint".length));
      assert.equal(head.body, "");
      // Not a token: 404 without asking.
      for (const bad of ["a.b", "a/b", "", "a?x=1"]) {
        const r = await request(port, `${PATH}${bad}`, { host: "web.test" });
        assert.equal(r.status, 404, bad);
        assert.equal(r.body, "not an ACME challenge token\n");
      }
      // Unknown to ACME: the routes decide (the instance answers; no route: 404), no redirect.
      assert.equal((await request(port, `${PATH}other`)).body, `a ${PATH}other`);
      assert.equal((await request(port, `${PATH}other`, { host: "none.test" })).status, 404);
      // Only GET and HEAD, only on the plain listener.
      const post = await request(port, `${PATH}tok_en-1`, { method: "POST" });
      assert.equal(post.body, `a ${PATH}tok_en-1`);
      const tlsPort = proxy.httpsAddress.port;
      const secure = await httpsRequest(tlsPort, `${PATH}tok_en-1`, {
        host: "web.test",
        caPem: WEB.caPem,
      });
      assert.equal(secure.body, `a ${PATH}tok_en-1`);
      assert.deepEqual(asked, ["tok_en-1", "tok_en-1", "tok_en-1", "other", "other"]);
    });
  } finally {
    await a.close();
  }
});
