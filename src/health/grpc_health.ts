/**
 * The gRPC health protocol (`grpc.health.v1.Health/Check`) for `berth.check.grpc=true`: one
 * unary call over HTTP/2 cleartext (a `node:http2` session per run, closed after it), the two
 * tiny protobuf messages encoded by hand:
 *
 * ```proto
 * message HealthCheckRequest { string service = 1; }
 * message HealthCheckResponse {
 *   enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
 *   ServingStatus status = 1;
 * }
 * ```
 *
 * The check passes on SERVING with grpc-status 0; any other status, a gRPC error, a malformed
 * answer or a connection failure fails it.
 *
 * @module
 */
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import { connectWithLocalHeader } from "./proxy_local.ts";

/** The method path of the health check. */
export const HEALTH_CHECK_PATH = "/grpc.health.v1.Health/Check";
/** Largest health response read (a HealthCheckResponse is a few bytes). */
export const HEALTH_RESPONSE_BYTES_MAX = 64 * 1024;
/** Names of HealthCheckResponse.ServingStatus values. */
export const SERVING_STATUS_NAMES: readonly string[] = [
  "UNKNOWN",
  "SERVING",
  "NOT_SERVING",
  "SERVICE_UNKNOWN",
];
export const SERVING = 1;

/** What one health call found. */
export type GrpcHealthAnswer =
  /** The server answered with grpc-status 0 and this ServingStatus. */
  | { kind: "status"; status: number }
  /** The call ended with a non-zero grpc-status (e.g. 12 UNIMPLEMENTED: no health service). */
  | { kind: "grpc-error"; code: number; message: string };

/** Runs one health call against `address:port`; rejects on a connection or protocol failure. */
export type GrpcHealthCall = (
  target: { address: string; port: number; service?: string; proxyProtocol?: 1 | 2 },
  signal: AbortSignal,
) => Promise<GrpcHealthAnswer>;

/** Reads a protobuf varint at `at`; returns [value, next offset]; throws when cut short. */
function readVarint(b: Uint8Array, at: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (let i = at; i < b.length && i < at + 10; i++) {
    const byte = b[i]!;
    // Only the low 53 bits matter for the values read here; higher ones are dropped.
    if (shift < 53) value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) return [value, i + 1];
  }
  throw new Error("malformed protobuf varint");
}

function writeVarint(n: number, out: number[]): void {
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

/** A HealthCheckRequest (`service` "" asks about the whole server) as protobuf bytes. */
export function encodeHealthRequest(service: string): Uint8Array {
  if (service === "") return new Uint8Array(0); // proto3 leaves default values out
  const name = Buffer.from(service, "utf8");
  const head: number[] = [0x0a]; // field 1, length-delimited
  writeVarint(name.length, head);
  return Buffer.concat([Uint8Array.from(head), name]);
}

/** The service name of a HealthCheckRequest (for test servers); throws on bad bytes. */
export function decodeHealthRequest(b: Uint8Array): string {
  let service = "";
  let at = 0;
  while (at < b.length) {
    const [tag, next] = readVarint(b, at);
    at = next;
    const wire = tag & 7;
    if (wire !== 2) throw new Error(`unexpected protobuf wire type ${wire}`);
    const [len, after] = readVarint(b, at);
    if (after + len > b.length) throw new Error("protobuf field runs past the message");
    if (Math.floor(tag / 8) === 1) {
      service = new TextDecoder().decode(b.subarray(after, after + len));
    }
    at = after + len;
  }
  return service;
}

/** A HealthCheckResponse with `status` as protobuf bytes (for tests and test servers). */
export function encodeHealthResponse(status: number): Uint8Array {
  if (status === 0) return new Uint8Array(0);
  const out: number[] = [0x08]; // field 1, varint
  writeVarint(status, out);
  return Uint8Array.from(out);
}

/** The ServingStatus of a HealthCheckResponse (unknown fields skipped); throws on bad bytes. */
export function decodeHealthResponse(b: Uint8Array): number {
  let status = 0;
  let at = 0;
  while (at < b.length) {
    const [tag, next] = readVarint(b, at);
    at = next;
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      const [v, after] = readVarint(b, at);
      at = after;
      if (field === 1) status = v;
    } else if (wire === 2) {
      const [len, after] = readVarint(b, at);
      at = after + len;
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else throw new Error(`unsupported protobuf wire type ${wire}`);
    if (at > b.length) throw new Error("protobuf field runs past the message");
  }
  return status;
}

/** One gRPC message frame: flag 0 (not compressed), 4-byte big-endian length, the message. */
export function grpcFrame(message: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** The one message of a unary response body; throws when it is not exactly one frame. */
export function readOneFrame(body: Uint8Array): Uint8Array {
  if (body.length < 5) throw new Error("no response message");
  if (body[0] !== 0) throw new Error("compressed response message (none was accepted)");
  const len = Buffer.from(body.buffer, body.byteOffset, body.byteLength).readUInt32BE(1);
  if (5 + len !== body.length) throw new Error("response is not exactly one gRPC message");
  return body.subarray(5);
}

/** `grpc-message` is percent-encoded (gRPC over HTTP/2); undone, badly encoded text kept. */
export function decodeGrpcMessage(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

/** The default GrpcHealthCall: one h2c session per run, closed once the call ends. */
export const nodeGrpcHealthCall: GrpcHealthCall = (target, signal) =>
  new Promise((resolve, reject) => {
    const host = target.address.includes(":") ? `[${target.address}]` : target.address;
    const pp = target.proxyProtocol;
    // With `berth.proxy-protocol`: the session's connection starts with a LOCAL header.
    const session = pp === undefined
      ? http2.connect(`http://${host}:${target.port}`)
      : http2.connect(`http://${host}:${target.port}`, {
        createConnection: () => connectWithLocalHeader(target.address, target.port, pp),
      });
    let settled = false;
    const finish = (e: Error | null, answer?: GrpcHealthAnswer) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      session.destroy();
      if (e !== null) reject(e);
      else resolve(answer!);
    };
    const onAbort = () => finish(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    session.on("error", (e) => finish(e));
    session.on("close", () => finish(new Error("connection closed")));
    const stream = session.request({
      ":method": "POST",
      ":path": HEALTH_CHECK_PATH,
      "content-type": "application/grpc",
      te: "trailers",
      "user-agent": "berth-health-check",
    });
    // A stream cancelled because its session failed says why in `cause` (e.g. ECONNREFUSED).
    stream.on("error", (e: Error) => finish(e.cause instanceof Error ? e.cause : e));
    const chunks: Buffer[] = [];
    let bytes = 0;
    let head: http2.IncomingHttpHeaders | null = null;
    let trailers: http2.IncomingHttpHeaders | null = null;
    stream.on("response", (h) => {
      head = h;
      // Listening for data only now: Deno's node:http2 can emit data before "response".
      stream.on("data", (d: Buffer) => {
        bytes += d.length;
        if (bytes > HEALTH_RESPONSE_BYTES_MAX) {
          return finish(new Error(`response over ${HEALTH_RESPONSE_BYTES_MAX} bytes`));
        }
        chunks.push(d);
      });
    });
    stream.on("trailers", (t) => trailers = t);
    stream.on("end", () => {
      if (head === null) return finish(new Error("no response headers"));
      const status = Number(head[":status"]);
      if (status !== 200) return finish(new Error(`HTTP status ${status}`));
      const fields = trailers ?? head; // trailers-only: the status is in the headers
      const code = fields["grpc-status"];
      if (code === undefined) return finish(new Error("no grpc-status"));
      if (code !== "0") {
        const message = fields["grpc-message"];
        return finish(null, {
          kind: "grpc-error",
          code: Number(code),
          message: typeof message === "string" ? decodeGrpcMessage(message) : "",
        });
      }
      try {
        const status = decodeHealthResponse(readOneFrame(Buffer.concat(chunks)));
        finish(null, { kind: "status", status });
      } catch (e) {
        finish(e as Error);
      }
    });
    // After "end" when the call completed; alone when the stream was reset or cut off.
    stream.on("close", () => finish(new Error("stream closed without an answer")));
    stream.end(grpcFrame(encodeHealthRequest(target.service ?? "")));
    if (signal.aborted) onAbort();
  });
