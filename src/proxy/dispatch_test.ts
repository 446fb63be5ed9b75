import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { ClientRequest } from "./client_conn.ts";
import type { ConnInfo, DispatchSink } from "./conn_info.ts";
import { spec, startBackend, TestStore, withProxy } from "./_testing.ts";

/** A response sink that keeps what the proxy writes; `done` resolves at `end()`. */
function sink(): DispatchSink & { status: number; body: string; done: Promise<void> } {
  let ended!: () => void;
  const chunks: Buffer[] = [];
  const s = {
    status: 0,
    body: "",
    done: new Promise<void>((resolve) => ended = resolve),
    destroyed: false,
    headersSent: false,
    writableEnded: false,
    shouldKeepAlive: true,
    onAbort: null,
    writeHead(status: number) {
      s.status = status;
      s.headersSent = true;
    },
    write(chunk: Uint8Array) {
      chunks.push(Buffer.from(chunk));
      return true;
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
  return s;
}

function get(url: string, headers: string[]): ClientRequest {
  return { method: "GET", url, rawHeaders: headers, remoteAddress: "10.0.0.9", body: null };
}

Deno.test("HttpProxy.dispatch() sets X-Forwarded-Proto from the connection and drops the client's Forwarded and X-Real-IP", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, {}, async (_port, proxy) => {
      const cases: [ConnInfo, string][] = [
        [{ secure: true, servername: "web.test", alpn: "http/1.1" }, "https"],
        [{ secure: false }, "http"],
      ];
      for (const [conn, proto] of cases) {
        const res = sink();
        proxy.dispatch(
          get("/x", [
            "Host",
            "web.test",
            "X-Forwarded-Proto",
            "gopher",
            "Forwarded",
            "for=1.2.3.4;proto=http",
            "X-Real-IP",
            "6.6.6.6",
          ]),
          res,
          conn,
        );
        await res.done;
        assert.equal(res.status, 200);
        assert.equal(res.body, "a /x");
        const seen = a.seen.at(-1)!;
        assert.equal(seen["x-forwarded-proto"], proto);
        assert.equal(seen["x-forwarded-for"], "10.0.0.9");
        assert.equal(seen.forwarded, undefined);
        assert.equal(seen["x-real-ip"], undefined);
      }
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy.dispatch() answers 404 itself for a request no route matches", async () => {
  await withProxy(new TestStore(), {}, async (_port, proxy) => {
    const res = sink();
    proxy.dispatch(get("/", ["Host", "none.test"]), res, { secure: true });
    await res.done;
    assert.equal(res.status, 404);
    assert.equal(res.body, "no route for none.test/\n");
  });
});
