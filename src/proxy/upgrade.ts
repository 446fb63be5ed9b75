/**
 * `Upgrade` requests (WebSocket): the request head as the instance will see it, and the tunnel
 * to an instance of the route (relay.ts), or a plain answer written to the raw socket.
 *
 * @module
 */
import http from "node:http";
import { Buffer } from "node:buffer";
import type net from "node:net";
import type { Duplex } from "node:stream";
import type { ClientRequest } from "./client_conn.ts";
import type { ConnInfo } from "./conn_info.ts";
import type { PlainAnswer } from "./exchange.ts";
import { CLIENT_SET_BY_PROXY } from "./headers.ts";
import { requestKey } from "./lb_key.ts";
import { cookieTarget } from "./sticky_cookie.ts";
import { endClient, relay } from "./relay.ts";
import { proxyPreamble } from "./proxy_protocol_out.ts";
import type { ServiceRoute } from "./routes.ts";
import type { UpstreamPool } from "./upstream_pool.ts";

/** What an upgrade needs from the proxy. */
export interface UpgradeContext {
  pool: UpstreamPool;
  connectTimeoutMs: number;
  retriesMax: number;
  idleTimeoutMs: number;
  /** Open client tunnels (closed with the proxy). */
  tunnels: Set<Duplex>;
  /** The route of a request, or the answer to give instead. */
  route(host: string | undefined, url: string, conn: ConnInfo): ServiceRoute | PlainAnswer;
}

/** A plain-text response written straight to a socket, which then closes. */
export function rawPlain(socket: Duplex, a: PlainAnswer): void {
  const body = a.text + "\n";
  let extra = "";
  const h = a.headers ?? [];
  for (let i = 0; i + 1 < h.length; i += 2) extra += `${h[i]}: ${h[i + 1]}\r\n`;
  endClient(
    socket,
    `HTTP/1.1 ${a.status} ${http.STATUS_CODES[a.status] ?? ""}\r\n${extra}` +
      `content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `connection: close\r\n\r\n${body}`,
  );
}

/** Routes an Upgrade request and tunnels it to an instance (or answers it plainly). */
export function forwardUpgrade(
  ctx: UpgradeContext,
  req: ClientRequest,
  socket: net.Socket,
  head: Buffer,
  conn: ConnInfo,
): void {
  socket.on("error", () => socket.destroy());
  const url = req.url;
  // The request head as the target will see it: the client's headers (Connection and Upgrade
  // kept, since they ask for the upgrade) plus X-Forwarded-*.
  let text = `${req.method} ${url} HTTP/1.1\r\n`;
  let host: string | undefined;
  let forwardedFor: string | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name === "host") host ??= value;
    if (name === "x-forwarded-for") {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
    }
    if (name.startsWith("x-forwarded-") || name === "proxy-connection") continue;
    if (CLIENT_SET_BY_PROXY.has(name)) continue; // Forwarded, X-Real-IP (headers.ts)
    text += `${raw[i]}: ${value}\r\n`;
  }
  const route = ctx.route(host, url, conn);
  if ("status" in route) return rawPlain(socket, route);
  const ip = req.remoteAddress;
  text += `x-forwarded-for: ${forwardedFor ? `${forwardedFor}, ${ip}` : ip}\r\n`;
  text += `x-forwarded-proto: ${conn.secure ? "https" : "http"}\r\n`;
  if (host !== undefined) text += `x-forwarded-host: ${host}\r\n`;
  text += "\r\n";
  ctx.tunnels.add(socket);
  socket.once("close", () => ctx.tunnels.delete(socket));
  relay(socket, route, {
    pool: ctx.pool,
    connectTimeoutMs: ctx.connectTimeoutMs,
    retriesMax: ctx.retriesMax,
    idleTimeoutMs: ctx.idleTimeoutMs,
    preamble: proxyPreamble(route, socket, Buffer.from(text, "latin1")),
    upgrade: { held: head },
    key: requestKey(route, req),
    first: route.balancer.policy === "sticky_cookie"
      ? cookieTarget(ctx.pool, route, req.rawHeaders)
      : null,
    onFail: (why) =>
      rawPlain(socket, { status: 502, text: `bad gateway: service ${route.service}: ${why}` }),
  });
}
