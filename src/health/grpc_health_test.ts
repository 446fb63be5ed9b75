import assert from "node:assert/strict";
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import {
  decodeHealthRequest,
  decodeHealthResponse,
  encodeHealthRequest,
  encodeHealthResponse,
  grpcFrame,
  HEALTH_CHECK_PATH,
  nodeGrpcHealthCall,
  readOneFrame,
} from "./grpc_health.ts";
import { probe } from "./probe.ts";
import { unusedPort } from "../../test/ports.ts";
import { startGrpcServer } from "../../test/grpc_echo.ts";

Deno.test("encodeHealthRequest() writes field 1 as a length-delimited string; empty is no bytes", () => {
  assert.deepEqual([...encodeHealthRequest("")], []);
  assert.deepEqual([...encodeHealthRequest("ab")], [0x0a, 2, 0x61, 0x62]);
  const long = encodeHealthRequest("x".repeat(200));
  assert.deepEqual([...long.subarray(0, 3)], [0x0a, 0xc8, 0x01]);
});

Deno.test("decodeHealthResponse() reads the status, skips unknown fields, refuses cut bytes", () => {
  assert.equal(decodeHealthResponse(encodeHealthResponse(1)), 1);
  assert.equal(decodeHealthResponse(encodeHealthResponse(2)), 2);
  assert.equal(decodeHealthResponse(new Uint8Array(0)), 0);
  // field 2 (string "hi"), field 3 (fixed32), then status 1
  const withUnknown = Uint8Array.from([0x12, 2, 0x68, 0x69, 0x1d, 0, 0, 0, 0, 0x08, 1]);
  assert.equal(decodeHealthResponse(withUnknown), 1);
  assert.throws(() => decodeHealthResponse(Uint8Array.from([0x08])), /varint/);
  assert.throws(() => decodeHealthResponse(Uint8Array.from([0x12, 5, 1])), /past the message/);
  assert.throws(() => decodeHealthResponse(Uint8Array.from([0x0b])), /wire type 3/);
});

Deno.test("readOneFrame() takes exactly one uncompressed message", () => {
  assert.deepEqual([...readOneFrame(grpcFrame(Uint8Array.from([8, 1])))], [8, 1]);
  assert.throws(() => readOneFrame(new Uint8Array(3)), /no response message/);
  const compressed = grpcFrame(Uint8Array.from([8, 1]));
  compressed[0] = 1;
  assert.throws(() => readOneFrame(compressed), /compressed/);
  assert.throws(
    () => readOneFrame(Buffer.concat([grpcFrame(new Uint8Array(0)), grpcFrame(new Uint8Array(0))])),
    /exactly one/,
  );
});

type Answer = (stream: http2.ServerHttp2Stream, body: Buffer) => void;

/** A real h2c server answering the health method with `answer`. */
async function healthServer(answer: Answer) {
  const seen: { path: string; contentType: string; te: string; body: Buffer }[] = [];
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on("data", (d: Buffer) => chunks.push(d));
    stream.on("end", () => {
      const body = Buffer.concat(chunks);
      seen.push({
        path: String(headers[":path"]),
        contentType: String(headers["content-type"]),
        te: String(headers.te),
        body,
      });
      answer(stream, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    seen,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function reply(status: number): Answer {
  return (stream) => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
      waitForTrailers: true,
    });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(grpcFrame(encodeHealthResponse(status)));
  };
}

const run = (port: number) =>
  probe({ kind: "grpc", address: "127.0.0.1", port }, { timeoutMs: 2000 });

Deno.test("probe() gRPC health: SERVING passes, NOT_SERVING fails, the request is the protocol's", async () => {
  let status = 1;
  const server = await healthServer((s, b) => reply(status)(s, b));
  try {
    assert.deepEqual(await run(server.port), {
      status: "passing",
      output: `gRPC health 127.0.0.1:${server.port}: SERVING`,
    });
    status = 2;
    assert.deepEqual(await run(server.port), {
      status: "critical",
      output: `gRPC health 127.0.0.1:${server.port}: NOT_SERVING`,
    });
    const req = server.seen[0]!;
    assert.equal(req.path, HEALTH_CHECK_PATH);
    assert.equal(req.contentType, "application/grpc");
    assert.equal(req.te, "trailers");
    assert.deepEqual([...req.body], [0, 0, 0, 0, 0]); // one empty HealthCheckRequest
  } finally {
    await server.close();
  }
});

Deno.test("probe() gRPC health fails on a gRPC error (trailers-only), a bad answer or no server", async () => {
  const answers: Answer[] = [
    (s) =>
      s.respond({
        ":status": 200,
        "content-type": "application/grpc",
        "grpc-status": "12",
        "grpc-message": "unknown%20service",
      }, { endStream: true }),
    (s) => {
      s.respond({ ":status": 503 });
      s.end("down");
    },
    (s) => {
      s.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      s.on("wantTrailers", () => s.sendTrailers({ "grpc-status": "0" }));
      s.end(Buffer.from([0, 0, 0, 0, 9, 8])); // the frame says 9 bytes, 1 came
    },
  ];
  let n = 0;
  const server = await healthServer((s, b) => answers[n++]!(s, b));
  try {
    const outputs = [];
    for (let i = 0; i < answers.length; i++) {
      const r = await run(server.port);
      assert.equal(r.status, "critical");
      outputs.push(r.output.slice(`gRPC health 127.0.0.1:${server.port}: `.length));
    }
    assert.deepEqual(outputs, [
      "grpc-status 12 (unknown service)",
      "http status 503",
      "response is not exactly one grpc message",
    ]);
  } finally {
    await server.close();
  }
  const closed = await unusedPort();
  assert.deepEqual(await run(closed), {
    status: "critical",
    output: `gRPC health 127.0.0.1:${closed}: connection refused`,
  });
});

Deno.test("nodeGrpcHealthCall() gives up when aborted (a server that never answers)", async () => {
  const server = await healthServer(() => {});
  try {
    const r = await probe({ kind: "grpc", address: "127.0.0.1", port: server.port }, {
      timeoutMs: 100,
      grpcHealth: nodeGrpcHealthCall,
    });
    assert.deepEqual(r, {
      status: "critical",
      output: `gRPC health 127.0.0.1:${server.port}: timed out after 100ms`,
    });
  } finally {
    await server.close();
  }
});

Deno.test("probe() gRPC health against a real gRPC server (@grpc/grpc-js): whole server and one service", async () => {
  const statuses: Record<string, number> = { "": 1, "pkg.Down": 2 };
  const server = await startGrpcServer("h", { health: (service) => statuses[service] ?? 3 });
  const at = (service?: string) =>
    probe({ kind: "grpc", address: "127.0.0.1", port: server.port, service }, { timeoutMs: 2000 });
  try {
    assert.deepEqual(await at(), {
      status: "passing",
      output: `gRPC health 127.0.0.1:${server.port}: SERVING`,
    });
    assert.deepEqual(await at("pkg.Down"), {
      status: "critical",
      output: `gRPC health 127.0.0.1:${server.port}/pkg.Down: NOT_SERVING`,
    });
    assert.equal((await at("pkg.Other")).output.endsWith(": SERVICE_UNKNOWN"), true);
  } finally {
    server.close();
  }
});

Deno.test("decodeHealthRequest() reads the service name back", () => {
  assert.equal(decodeHealthRequest(encodeHealthRequest("pkg.Svc")), "pkg.Svc");
  assert.equal(decodeHealthRequest(new Uint8Array(0)), "");
  assert.throws(() => decodeHealthRequest(Uint8Array.from([0x08, 1])), /wire type 0/);
});
