/**
 * A real gRPC service for the gRPC tests (the proxy's and end to end), served and called with
 * `@grpc/grpc-js` (defined with `makeGenericClientConstructor` and string serializers, no .proto
 * file):
 *
 * - `t.Echo/Echo` (unary): answers `NAME:REQUEST`, with response metadata `x-served-by: NAME`
 *   and trailing metadata `x-trailer: NAME`; the request `fail` ends with NOT_FOUND
 *   ("no such thing") after the response headers, `fail-at-once` with PERMISSION_DENIED
 *   ("not you") in a trailers-only response; `hang` is never answered;
 * - `t.Echo/Chat` (bidirectional): answers each message with `NAME:MESSAGE` as it arrives;
 * - `grpc.health.v1.Health/Check`: the gRPC health protocol, answering `health(service)`
 *   (default SERVING), messages encoded by src/health/grpc_health.ts.
 *
 * @module
 */
// @ts-types="./grpc_js.d.ts"
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import {
  decodeHealthRequest,
  encodeHealthResponse,
  HEALTH_CHECK_PATH,
  SERVING,
} from "../src/health/grpc_health.ts";

const toBytes = (s: string) => Buffer.from(s, "utf8");
const fromBytes = (b: Buffer) => b.toString("utf8");

const ECHO_SERVICE = {
  echo: {
    path: "/t.Echo/Echo",
    requestStream: false,
    responseStream: false,
    requestSerialize: toBytes,
    requestDeserialize: fromBytes,
    responseSerialize: toBytes,
    responseDeserialize: fromBytes,
  },
  chat: {
    path: "/t.Echo/Chat",
    requestStream: true,
    responseStream: true,
    requestSerialize: toBytes,
    requestDeserialize: fromBytes,
    responseSerialize: toBytes,
    responseDeserialize: fromBytes,
  },
} as const;

const bytes = (b: Uint8Array) => Buffer.from(b);

const HEALTH_SERVICE = {
  check: {
    path: HEALTH_CHECK_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
} as const;

/** What a unary call returned (or how it failed). */
export interface UnaryResult {
  value: string | null;
  error: grpc.ServiceError | null;
  headers: grpc.Metadata | null;
  trailers: grpc.Metadata | null;
}

/** A client of the test service. */
export interface EchoClient {
  echo(request: string): Promise<UnaryResult>;
  /** A bidirectional call: sends `messages` one by one, each after the previous answer. */
  chat(messages: string[]): Promise<{ got: string[]; error: grpc.ServiceError | null }>;
  close(): void;
}

/**
 * Serves the test service on 127.0.0.1 (a free port); `health(service)` is the ServingStatus
 * the health service answers (default SERVING).
 */
export async function startGrpcServer(
  name: string,
  opts: { health?: (service: string) => number } = {},
) {
  const server = new grpc.Server();
  // deno-lint-ignore no-explicit-any
  server.addService(HEALTH_SERVICE as any, {
    check: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Uint8Array>) =>
      done(null, encodeHealthResponse(opts.health?.(decodeHealthRequest(call.request)) ?? SERVING)),
  });
  // deno-lint-ignore no-explicit-any
  server.addService(ECHO_SERVICE as any, {
    echo: (
      call: grpc.ServerUnaryCall<string, string>,
      done: grpc.sendUnaryData<string>,
    ) => {
      if (call.request === "hang") return; // never answers
      const trailer = new grpc.Metadata();
      trailer.set("x-trailer", name);
      if (call.request === "fail-at-once") {
        // No response headers first: the status goes out trailers-only.
        return done({ code: grpc.status.PERMISSION_DENIED, details: "not you", metadata: trailer });
      }
      const head = new grpc.Metadata();
      head.set("x-served-by", name);
      call.sendMetadata(head);
      if (call.request === "fail") {
        return done({ code: grpc.status.NOT_FOUND, details: "no such thing", metadata: trailer });
      }
      done(null, `${name}:${call.request}`, trailer);
    },
    chat: (call: grpc.ServerDuplexStream<string, string>) => {
      call.on("data", (m: string) => call.write(`${name}:${m}`));
      call.on("end", () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      "127.0.0.1:0",
      grpc.ServerCredentials.createInsecure(),
      (e, p) => e ? reject(e) : resolve(p),
    )
  );
  return { port, close: () => server.forceShutdown() };
}

/**
 * A client of the test service at `address` (`host:port`), over h2c, or over TLS trusting
 * `rootCertPem` and checking the server's certificate for `servername` (default: the
 * authority); `authority` is the `:authority` it sends (the proxy routes by it).
 */
export function echoClient(
  address: string,
  opts: { authority: string; rootCertPem?: string; servername?: string; deadlineMs?: number },
): EchoClient {
  const Client = grpc.makeGenericClientConstructor(
    // deno-lint-ignore no-explicit-any
    ECHO_SERVICE as any,
    "Echo",
  );
  const credentials = opts.rootCertPem === undefined
    ? grpc.credentials.createInsecure()
    : grpc.credentials.createSsl(Buffer.from(opts.rootCertPem));
  const client = new Client(address, credentials, {
    "grpc.default_authority": opts.authority,
    "grpc.ssl_target_name_override": opts.servername ?? opts.authority,
  });
  const deadline = () => Date.now() + (opts.deadlineMs ?? 10_000);
  // deno-lint-ignore no-explicit-any
  const c = client as any;
  return {
    echo: (request) =>
      new Promise((resolve) => {
        const r: UnaryResult = { value: null, error: null, headers: null, trailers: null };
        const call = c.echo(
          request,
          new grpc.Metadata(),
          { deadline: deadline() },
          (error: grpc.ServiceError | null, value: string) => {
            r.error = error;
            r.value = error === null ? value : null;
          },
        );
        call.on("metadata", (m: grpc.Metadata) => r.headers = m);
        call.on("status", (s: grpc.StatusObject) => {
          r.trailers = s.metadata;
          // The callback runs before "status": the result is whole here.
          queueMicrotask(() => resolve(r));
        });
      }),
    chat: (messages) =>
      new Promise((resolve) => {
        const got: string[] = [];
        let error: grpc.ServiceError | null = null;
        const call = c.chat({ deadline: deadline() });
        call.on("data", (m: string) => {
          got.push(m);
          if (got.length < messages.length) call.write(messages[got.length]);
          else call.end();
        });
        call.on("error", (e: grpc.ServiceError) => error = e);
        call.on("status", () => queueMicrotask(() => resolve({ got, error })));
        call.write(messages[0]);
      }),
    close: () => client.close(),
  };
}
