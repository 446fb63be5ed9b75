/**
 * The protocol the proxy speaks to a service's instances, as a service names it (the
 * `berth.http.proto` label or API Meta): `http1` (default), `h2c` (HTTP/2 over cleartext TCP)
 * or `grpc` (h2c, and the proxy's own errors answered as gRPC statuses). validate.ts holds the
 * rule that uses them; src/proxy/routes.ts reads the value into the route.
 *
 * @module
 */

/** Upstream protocols of the proxy; the first is the default. */
export const HTTP_PROTOS = ["http1", "h2c", "grpc"] as const;
export type HttpProto = typeof HTTP_PROTOS[number];
/** Instance meta key selecting a service's upstream protocol. */
export const HTTP_PROTO_META_KEY = "berth.http.proto";
/** Other spellings accepted. */
const HTTP_PROTO_ALIASES: Record<string, HttpProto> = {
  "http/1.1": "http1",
  http: "http1",
  h2: "h2c",
  http2: "h2c",
};

/** A protocol name or alias (any case) → the protocol; `null` for an unknown one. */
export function parseHttpProto(s: string): HttpProto | null {
  const t = s.trim().toLowerCase();
  return (HTTP_PROTOS as readonly string[]).includes(t)
    ? t as HttpProto
    : HTTP_PROTO_ALIASES[t] ?? null;
}
