/**
 * Types of the part of `@grpc/grpc-js` the proxy's gRPC tests use (grpc_echo.ts imports the
 * package with `@ts-types` pointing here). The package's own declarations reference the
 * `@types/node` 18 that protobufjs depends on, and type-checking them replaces Deno's built-in
 * Node types (no `node:sqlite`) in every module checked together with them.
 *
 * @module
 */

export declare const status: {
  readonly OK: 0;
  readonly NOT_FOUND: 5;
  readonly PERMISSION_DENIED: 7;
  readonly DEADLINE_EXCEEDED: 4;
  readonly UNAVAILABLE: 14;
};

export declare class Metadata {
  set(key: string, value: string): void;
  get(key: string): (string | Uint8Array)[];
}

export interface StatusObject {
  code: number;
  details: string;
  metadata: Metadata;
}

export interface ServiceError extends Error {
  code: number;
  details: string;
  metadata: Metadata;
}

export interface ServerUnaryCall<Req, _Res> {
  request: Req;
  sendMetadata(m: Metadata): void;
}

export type sendUnaryData<Res> = (
  error: { code: number; details: string; metadata?: Metadata } | null,
  value?: Res,
  trailer?: Metadata,
) => void;

export interface ServerDuplexStream<Req, Res> {
  on(event: "data", fn: (m: Req) => void): this;
  on(event: "end", fn: () => void): this;
  write(m: Res): boolean;
  end(): void;
}

export declare class ServerCredentials {
  static createInsecure(): ServerCredentials;
}

export declare class Server {
  addService(service: unknown, implementation: Record<string, unknown>): void;
  bindAsync(
    address: string,
    credentials: ServerCredentials,
    done: (error: Error | null, port: number) => void,
  ): void;
  forceShutdown(): void;
}

export declare class ChannelCredentials {}

export declare const credentials: {
  createInsecure(): ChannelCredentials;
  createSsl(rootCerts?: Uint8Array): ChannelCredentials;
};

export interface Client {
  close(): void;
}

export declare function makeGenericClientConstructor(
  methods: unknown,
  serviceName: string,
): new (
  address: string,
  credentials: ChannelCredentials,
  options?: Record<string, unknown>,
) => Client;
