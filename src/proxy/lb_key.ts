/**
 * The hash key of a request for the `hash` and `sticky_cookie` policies (balancer.ts): for
 * `hash`, what `berth.lb.hash` names (the client's IP by default, or a request header's or a
 * cookie's value; a request without it has no key and goes round robin); for `sticky_cookie`,
 * the client's IP (what an upgrade without the cookie, which cannot set one, is hashed by; an
 * HTTP request's first pick is round robin: sticky_cookie.ts). IPv4-mapped IPv6 addresses (`::ffff:10.0.0.7`, what a
 * dual-stack listener reports) are written as IPv4, so that every member sees the same key.
 *
 * @module
 */
import type { ClientRequest } from "./client_conn.ts";
import { lbSettings } from "./lb_settings.ts";
import type { ServiceRoute } from "./routed_service.ts";

/** A client address as a hash key: `::ffff:a.b.c.d` → `a.b.c.d`, otherwise unchanged. */
export function clientKey(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/**
 * The value of cookie `name` in request headers [name, value, …] (every `Cookie` header: HTTP/2
 * clients may split them), or undefined. The first one wins.
 */
export function cookieValue(rawHeaders: readonly string[], name: string): string | undefined {
  return cookieValues(rawHeaders, name, true)[0];
}

/**
 * Every value of cookie `name`, in order (a browser sends two of one name when a Domain cookie
 * and a host-only one both match); with `first`, only the first.
 */
export function cookieValues(rawHeaders: readonly string[], name: string, first = false): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const h = rawHeaders[i]!;
    if (h.length !== 6 || h.toLowerCase() !== "cookie") continue;
    const header = rawHeaders[i + 1]!;
    for (const pair of header.split(";")) {
      const eq = pair.indexOf("=");
      if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
      let v = pair.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      out.push(v);
      if (first) return out;
    }
  }
  return out;
}

/** The first value of header `name` (lower case) in [name, value, …], or undefined. */
function headerValue(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const h = rawHeaders[i]!;
    if (h.length === name.length && h.toLowerCase() === name) return rawHeaders[i + 1]!;
  }
  return undefined;
}

/**
 * The request's hash key on `route`, undefined when its policy takes none or the request lacks
 * the header or cookie. `client` (the client's IP) defaults to the connection's peer.
 */
export function requestKey(
  route: ServiceRoute,
  req: Pick<ClientRequest, "rawHeaders" | "remoteAddress">,
  client: string = req.remoteAddress,
): string | undefined {
  const policy = route.balancer.policy;
  if (policy === "sticky_cookie") return clientKey(client);
  if (policy !== "hash") return undefined;
  const source = lbSettings(route).hash;
  switch (source.from) {
    case "ip":
      return clientKey(client);
    case "header":
      return headerValue(req.rawHeaders, source.name);
    case "cookie":
      return cookieValue(req.rawHeaders, source.name);
  }
}
