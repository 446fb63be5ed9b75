/**
 * The hash key of a request for the `hash` and `sticky_cookie` policies (balancer.ts): the
 * client's IP by default. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.7`, what a dual-stack
 * listener reports) are written as IPv4, so that every member sees the same key.
 *
 * @module
 */
import type { ClientRequest } from "./client_conn.ts";
import type { ServiceRoute } from "./routes.ts";

/** A client address as a hash key: `::ffff:a.b.c.d` → `a.b.c.d`, otherwise unchanged. */
export function clientKey(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/**
 * The request's hash key on `route`: its client's IP for `hash` and `sticky_cookie`, undefined
 * for the other policies (they take none). `client` defaults to the connection's peer.
 */
export function requestKey(
  route: ServiceRoute,
  req: ClientRequest,
  client: string = req.remoteAddress,
): string | undefined {
  const policy = route.balancer.policy;
  if (policy !== "hash" && policy !== "sticky_cookie") return undefined;
  return clientKey(client);
}
