import assert from "node:assert/strict";
import { httpServer, tcpServer } from "./_testing.ts";
import { describeError, httpStatus, probe, targetOf, targetOfRegistered } from "./probe.ts";
import { registeredCheck } from "../../test/fixtures.ts";
import { unusedPort } from "../../test/ports.ts";

Deno.test("httpStatus() passes 2xx, warns on 429 and fails the rest", () => {
  assert.deepEqual(
    [200, 204, 299, 429, 301, 404, 500, 503].map(httpStatus),
    ["passing", "passing", "passing", "warning", "critical", "critical", "critical", "critical"],
  );
});

Deno.test("targetOf() prefers http, then grpc, then tcp, adds a leading slash and skips empty definitions", () => {
  const at = { address: "10.0.0.5", port: 80 };
  assert.deepEqual(targetOf(at, { http: "health", tcp: true, intervalMs: 100, timeoutMs: 10 }), {
    kind: "http",
    address: "10.0.0.5",
    port: 80,
    path: "/health",
  });
  assert.deepEqual(targetOf(at, { tcp: true, intervalMs: 100, timeoutMs: 10 }), {
    kind: "tcp",
    address: "10.0.0.5",
    port: 80,
  });
  assert.deepEqual(targetOf(at, { grpc: true, tcp: true, intervalMs: 100, timeoutMs: 10 }), {
    kind: "grpc",
    address: "10.0.0.5",
    port: 80,
  });
  assert.equal(targetOf(at, { grpc: false, intervalMs: 100, timeoutMs: 10 }), null);
  assert.equal(targetOf(at, { intervalMs: 100, timeoutMs: 10 }), null);
});

Deno.test("describeError() gives short stable reasons", () => {
  assert.equal(
    describeError(Object.assign(new Error("x"), { code: "ECONNREFUSED" })),
    "connection refused",
  );
  assert.equal(describeError(new Error("Socket Hang Up\n  at foo")), "socket hang up");
  assert.equal(describeError("weird"), "weird");
});

Deno.test("probe() maps HTTP answers to status and a short output, without reading the body", async () => {
  const codes = [200, 429, 503, 302];
  const server = await httpServer((_p, n) => codes[n - 1] ?? 500);
  try {
    const t = { kind: "http" as const, address: "127.0.0.1", port: server.port, path: "/health" };
    const got = [];
    for (let i = 0; i < codes.length; i++) got.push(await probe(t, { timeoutMs: 5000 }));
    assert.deepEqual(got, [
      { status: "passing", output: "HTTP GET /health: 200 OK" },
      { status: "warning", output: "HTTP GET /health: 429 Too Many Requests" },
      { status: "critical", output: "HTTP GET /health: 503 Service Unavailable" },
      { status: "critical", output: "HTTP GET /health: 302 Found" },
    ]);
    assert.deepEqual(server.requests, ["/health", "/health", "/health", "/health"]);
  } finally {
    await server.close();
  }
});

Deno.test("probe() turns a hung HTTP answer into critical after timeoutMs", async () => {
  const server = await httpServer(() => "hang");
  try {
    const t = { kind: "http" as const, address: "127.0.0.1", port: server.port, path: "/slow" };
    assert.deepEqual(await probe(t, { timeoutMs: 100 }), {
      status: "critical",
      output: "HTTP GET /slow: timed out after 100ms",
    });
  } finally {
    await server.close();
  }
});

Deno.test("probe() reports a refused HTTP connection", async () => {
  const port = await unusedPort();
  const t = { kind: "http" as const, address: "127.0.0.1", port, path: "/" };
  assert.deepEqual(await probe(t, { timeoutMs: 5000 }), {
    status: "critical",
    output: "HTTP GET /: connection refused",
  });
});

Deno.test("probe() connects over TCP to a listening port and reports a closed one", async () => {
  const server = await tcpServer();
  const closed = await unusedPort();
  try {
    assert.deepEqual(
      await probe({ kind: "tcp", address: "127.0.0.1", port: server.port }, { timeoutMs: 5000 }),
      { status: "passing", output: `TCP connect 127.0.0.1:${server.port}: success` },
    );
    assert.deepEqual(
      await probe({ kind: "tcp", address: "127.0.0.1", port: closed }, { timeoutMs: 5000 }),
      { status: "critical", output: `TCP connect 127.0.0.1:${closed}: connection refused` },
    );
  } finally {
    await server.close();
  }
});

Deno.test("probe() stops at once when its signal aborts and never rejects", async () => {
  const ac = new AbortController();
  const t = { kind: "tcp" as const, address: "127.0.0.1", port: 1 };
  const tcpConnect = (_a: string, _p: number, signal: AbortSignal) =>
    new Promise<void>((_resolve, reject) => {
      signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
    });
  const run = probe(t, { timeoutMs: 60_000, signal: ac.signal, tcpConnect });
  ac.abort();
  assert.deepEqual(await run, { status: "critical", output: "TCP connect 127.0.0.1:1: stopped" });
});

Deno.test("probe() clips a long output to OUTPUT_CHARS_MAX", async () => {
  const t = { kind: "http" as const, address: "127.0.0.1", port: 1, path: "/" + "a".repeat(400) };
  const httpGet = () => Promise.resolve({ statusCode: 200, statusText: "OK" });
  const r = await probe(t, { timeoutMs: 1000, httpGet });
  assert.equal(r.status, "passing");
  assert.equal(r.output.length, 200);
  assert.ok(r.output.endsWith("…"));
});

Deno.test("targetOfRegistered() reads a gRPC check's host:port and optional service", () => {
  const grpc = (target: string) =>
    targetOfRegistered(
      registeredCheck("g", { kind: "grpc", target, ttlMs: 0, intervalMs: 1000, timeoutMs: 100 }),
    );
  assert.deepEqual(grpc("10.0.0.5:9090"), { kind: "grpc", address: "10.0.0.5", port: 9090 });
  assert.deepEqual(grpc("[fd00::5]:9090/pkg.Svc"), {
    kind: "grpc",
    address: "fd00::5",
    port: 9090,
    service: "pkg.Svc",
  });
});
