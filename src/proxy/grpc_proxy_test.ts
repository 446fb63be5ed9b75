/**
 * gRPC through the whole proxy with a real gRPC client and server (`@grpc/grpc-js`): the client
 * speaks HTTP/2 over TLS to the H2Frontend, the proxy forwards over h2c to the instances of a
 * `berth.http.proto=grpc` service.
 */
import assert from "node:assert/strict";
import { echoClient, startGrpcServer } from "../../test/grpc_echo.ts";
import { spec, TestStore } from "./_testing.ts";
import { testTls, withH2Proxy } from "./_h2_testing.ts";
import { unusedPort } from "../../test/ports.ts";

const GRPC = { "berth.http.proto": "grpc" };

/** A client of the proxy's TLS port asking for `authority` (the proxy routes by it). */
function client(port: number, authority = "web.test") {
  return echoClient(`127.0.0.1:${port}`, {
    authority,
    rootCertPem: testTls().caPem,
    servername: "web.test",
  });
}

Deno.test("gRPC through the proxy: unary and bidirectional calls, metadata both ways, a server error passed through", async () => {
  const a = await startGrpcServer("a");
  const ts = new TestStore();
  ts.register(spec({ id: "rpc-a", port: a.port, meta: GRPC }));
  try {
    await withH2Proxy(ts, {}, async (port) => {
      const c = client(port);
      try {
        const ok = await c.echo("hi");
        assert.equal(ok.error, null);
        assert.equal(ok.value, "a:hi");
        assert.deepEqual(ok.headers!.get("x-served-by"), ["a"]);
        assert.deepEqual(ok.trailers!.get("x-trailer"), ["a"]);

        const failed = await c.echo("fail");
        assert.equal(failed.error?.code, 5); // NOT_FOUND, after the response headers
        assert.equal(failed.error?.details, "no such thing");
        assert.deepEqual(failed.trailers!.get("x-trailer"), ["a"]);

        const atOnce = await c.echo("fail-at-once");
        assert.equal(atOnce.error?.code, 7); // PERMISSION_DENIED, trailers-only
        assert.equal(atOnce.error?.details, "not you");
        assert.deepEqual(atOnce.trailers!.get("x-trailer"), ["a"]);

        // Each message goes once the answer to the previous one came back through the proxy.
        const chat = await c.chat(["m0", "m1", "m2", "m3"]);
        assert.equal(chat.error, null);
        assert.deepEqual(chat.got, ["a:m0", "a:m1", "a:m2", "a:m3"]);
      } finally {
        c.close();
      }
    });
  } finally {
    a.close();
  }
});

Deno.test("gRPC through the proxy: UNAVAILABLE (14) when no instance passes or none can be reached; no route: 12", async () => {
  const closed = await unusedPort();
  const ts = new TestStore();
  ts.register(spec({ id: "sick", port: closed, meta: GRPC }));
  ts.check("sick", "critical");
  ts.register(
    spec({ id: "gone", service: "gone", port: closed, httpHosts: ["gone.test"], meta: GRPC }),
  );
  await withH2Proxy(ts, {}, async (port) => {
    const c = client(port);
    const gone = client(port, "gone.test");
    try {
      const none = await c.echo("hi");
      assert.equal(none.error?.code, 14);
      assert.equal(none.error?.details, "no healthy instance of service web");
      const unreachable = await gone.echo("hi");
      assert.equal(unreachable.error?.code, 14);
      assert.equal(
        unreachable.error?.details,
        "bad gateway: service gone: instance gone: ECONNREFUSED",
      );
      const chat = await gone.chat(["m0"]);
      assert.equal(chat.error?.code, 14);
      // No route at all: UNIMPLEMENTED (a plain-text 404 body read as a message was "8
      // RESOURCE_EXHAUSTED: received message larger than max").
      const nowhere = client(port, "none.test");
      const noRoute = await nowhere.echo("hi");
      assert.equal(noRoute.error?.code, 12);
      assert.equal(noRoute.error?.details, "no route for none.test/t.Echo/Echo");
      nowhere.close();
    } finally {
      c.close();
      gone.close();
    }
  });
});

Deno.test("gRPC through the proxy: DEADLINE_EXCEEDED (4) when the instance does not answer in the response timeout", async () => {
  const a = await startGrpcServer("a");
  const ts = new TestStore();
  ts.register(spec({ id: "rpc-a", port: a.port, meta: GRPC }));
  try {
    await withH2Proxy(ts, { responseTimeoutMs: 300 }, async (port) => {
      const c = client(port);
      try {
        const hung = await c.echo("hang");
        assert.equal(hung.error?.code, 4);
        assert.match(hung.error!.details, /^gateway timeout: service web: instance rpc-a sent no/);
        assert.equal((await c.echo("after")).value, "a:after"); // one timeout ejects nobody
      } finally {
        c.close();
      }
    });
  } finally {
    a.close();
  }
});
