import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import { parseProxyHeader } from "../proxy/proxy_protocol.ts";
import { probe, targetOf } from "./probe.ts";
import { proxyLocalHeader, proxyVersionOfMeta } from "./proxy_local.ts";

/**
 * A server that requires a PROXY header first (as nginx `listen … proxy_protocol` does): it
 * closes a connection that starts otherwise; after the header, `answer` gets the rest.
 */
async function strictServer(answer: (rest: Buffer, socket: net.Socket) => void) {
  const headers: string[] = [];
  const server = net.createServer((socket) => {
    let got = Buffer.alloc(0);
    let done = false;
    socket.on("error", () => {});
    socket.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (done) return answer(got, socket);
      try {
        const r = parseProxyHeader(got);
        if (r === "more") return;
        done = true;
        headers.push(`v${r.header.version} ${r.header.source === null ? "local" : "proxied"}`);
        got = got.subarray(r.length);
        if (got.length > 0) answer(got, socket);
      } catch {
        headers.push("none");
        socket.destroy();
      }
    });
    socket.on("end", () => socket.end());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    headers,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const http200 = (rest: Buffer, socket: net.Socket) => {
  if (rest.includes("\r\n\r\n")) {
    socket.end("HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
  }
};

Deno.test("proxyLocalHeader is a LOCAL header (no addresses) that parseProxyHeader reads whole", () => {
  for (const v of [1, 2] as const) {
    const bytes = proxyLocalHeader(v);
    const r = parseProxyHeader(bytes);
    assert.notEqual(r, "more");
    if (r === "more") return;
    assert.deepEqual(r, { header: { version: v, source: null, dest: null }, length: bytes.length });
  }
  assert.equal(new TextDecoder().decode(proxyLocalHeader(1)), "PROXY UNKNOWN\r\n");
  assert.equal(proxyVersionOfMeta({ "berth.proxy-protocol": "v2" }), 2);
  assert.equal(proxyVersionOfMeta({ "berth.proxy-protocol": "v1" }), 1);
  assert.equal(proxyVersionOfMeta({ "berth.proxy-protocol": "v9" }), undefined);
  assert.equal(proxyVersionOfMeta({}), undefined);
});

Deno.test("probe: HTTP and TCP checks of an instance with berth.proxy-protocol send a LOCAL header first and pass", async () => {
  const s = await strictServer(http200);
  try {
    for (const v of ["v1", "v2"]) {
      const instance = { address: "127.0.0.1", port: s.port, meta: { "berth.proxy-protocol": v } };
      const http = targetOf(instance, { http: "/health", intervalMs: 1000, timeoutMs: 1000 })!;
      assert.deepEqual(await probe(http, { timeoutMs: 2000 }), {
        status: "passing",
        output: "HTTP GET /health: 200 OK",
      });
      const tcp = targetOf(instance, { tcp: true, intervalMs: 1000, timeoutMs: 1000 })!;
      assert.equal((await probe(tcp, { timeoutMs: 2000 })).status, "passing");
    }
    // Without the meta key no header: the strict server refuses the HTTP check.
    const plain = targetOf({ address: "127.0.0.1", port: s.port }, {
      http: "/health",
      intervalMs: 1000,
      timeoutMs: 1000,
    })!;
    assert.equal((await probe(plain, { timeoutMs: 2000 })).status, "critical");
    // The TCP checks' headers can arrive after the check has passed.
    for (let i = 0; i < 100 && s.headers.length < 5; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(s.headers, ["v1 local", "v1 local", "v2 local", "v2 local", "none"]);
  } finally {
    await s.close();
  }
});

Deno.test("probe: a gRPC check of an instance with berth.proxy-protocol=v2 starts its connection with a LOCAL header", async () => {
  // The server sees the header, then closes (it speaks no HTTP/2): the check fails, but only
  // after the header arrived.
  const s = await strictServer((_rest, socket) => socket.destroy());
  try {
    const t = targetOf({
      address: "127.0.0.1",
      port: s.port,
      meta: { "berth.proxy-protocol": "v2" },
    }, { grpc: true, intervalMs: 1000, timeoutMs: 1000 })!;
    assert.equal(t.proxyProtocol, 2);
    assert.equal((await probe(t, { timeoutMs: 2000 })).status, "critical");
    assert.deepEqual(s.headers, ["v2 local"]);
  } finally {
    await s.close();
  }
});
