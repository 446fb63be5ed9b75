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
import { lbSettings } from "./lb_settings.ts";
import { cookieTarget } from "./sticky_cookie.ts";
import { endClient, relay } from "./relay.ts";
import { proxyPreamble } from "./proxy_protocol_out.ts";
import type { PathRoute } from "./routes.ts";
import {
  type Chain,
  EMPTY_CHAIN,
  type RequestState,
  runRequestStages,
} from "./middleware/pipeline.ts";
import type { RouteSettings } from "./route_settings.ts";
import { type RequestObserver, UpgradeRecorder } from "./request_record.ts";
import { saneRequestId } from "./request_id.ts";
import { normalizeTarget, saneHost } from "./request_path.ts";
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
  route(host: string | undefined, url: string, conn: ConnInfo): PathRoute | PlainAnswer;
  /** The request's X-Request-Id: the client's own (`own`, sane) if kept from it, else new. */
  requestId(own: string | undefined, req: Pick<ClientRequest, "remoteAddress" | "ends">): string;
  log(line: string): void;
  /** Told of each upgrade request (null: none). */
  observers: readonly RequestObserver[] | null;
  member: string;
  /** A route's middleware chain by its settings (order.ts `chainOf`). */
  chainOf(s: RouteSettings): Chain;
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

/**
 * Routes an Upgrade request, runs the request stages of its route's middlewares (allow, auth,
 * rewrites, request headers; response stages do not apply to a tunnel) and tunnels it to an
 * instance, or answers it plainly.
 */
export function forwardUpgrade(
  ctx: UpgradeContext,
  req: ClientRequest,
  socket: net.Socket,
  head: Buffer,
  conn: ConnInfo,
): void {
  socket.on("error", () => socket.destroy());
  const startedMs = Date.now();
  // The request headers as the target will see them: the client's (Connection and Upgrade
  // kept, since they ask for the upgrade) plus X-Forwarded-* and X-Request-Id.
  const headers: string[] = [];
  let host: string | undefined;
  let forwardedFor: string | undefined;
  let clientId: string | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (name === "host") host ??= value;
    if (name === "x-forwarded-for") {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
    }
    if (name === "x-request-id") {
      if (clientId === undefined && saneRequestId(value)) clientId = value;
      continue;
    }
    if (name.startsWith("x-forwarded-") || name === "proxy-connection") continue;
    if (name === "http2-settings") continue; // never an h2c upgrade (client_conn.ts)
    if (name === "upgrade") {
      const tokens = value.split(",").map((t) => t.trim()).filter((t) =>
        t !== "" && t.toLowerCase() !== "h2c"
      );
      if (tokens.length > 0) headers.push(raw[i]!, tokens.join(", "));
      continue;
    }
    if (CLIENT_SET_BY_PROXY.has(name)) continue; // Forwarded, X-Real-IP (headers.ts)
    headers.push(raw[i]!, value);
  }
  const requestId = ctx.requestId(clientId, req);
  const rec = ctx.observers === null ? null : new UpgradeRecorder(socket, {
    observers: ctx.observers,
    member: ctx.member,
    req,
    conn,
    startedMs,
    requestId,
  }, head.length);
  const answer = (a: PlainAnswer) => {
    if (rec !== null) rec.status = a.status;
    rawPlain(socket, { ...a, headers: [...a.headers ?? [], "x-request-id", requestId] });
  };
  const target = normalizeTarget(req.url);
  const badHost = host !== undefined && !saneHost(host);
  if ("refused" in target || badHost) {
    rec?.routed(null, null);
    const why = badHost ? "malformed Host header" : (target as { refused: string }).refused;
    return answer({ status: 400, text: `bad request: ${why}` });
  }
  const url = target.url;
  const found = ctx.route(host, url, conn);
  if ("status" in found) {
    rec?.routed(found.path?.svc.service ?? null, found.path?.name ?? null);
    return answer(found);
  }
  const route = found.svc.route;
  rec?.routed(route.service, found.name);
  const ip = req.remoteAddress;
  headers.push("x-forwarded-for", forwardedFor ? `${forwardedFor}, ${ip}` : ip);
  headers.push("x-forwarded-proto", conn.secure ? "https" : "http");
  if (host !== undefined) headers.push("x-forwarded-host", host);
  headers.push("x-request-id", requestId);
  const state: RequestState = {
    req,
    conn,
    route,
    client: ip,
    host,
    prefix: found.prefix,
    url,
    headers,
    requestId,
  };
  const chain = ctx.chainOf(route.settings);
  if (chain === EMPTY_CHAIN) return tunnel(ctx, socket, head, state, rec, answer);
  runRequestStages(chain, state, (a) => {
    if (socket.destroyed) return;
    if (a !== null) return answer(a);
    tunnel(ctx, socket, head, state, rec, answer);
  }, { log: ctx.log, abort: () => socket.destroy() });
}

/** Writes the request head (from `s`) to an instance of the route and relays both ways. */
function tunnel(
  ctx: UpgradeContext,
  socket: net.Socket,
  head: Buffer,
  s: RequestState,
  rec: UpgradeRecorder | null,
  answer: (a: PlainAnswer) => void,
): void {
  let text = `${s.req.method} ${s.url} HTTP/1.1\r\n`;
  const h = s.headers;
  for (let i = 0; i + 1 < h.length; i += 2) text += `${h[i]}: ${h[i + 1]}\r\n`;
  text += "\r\n";
  ctx.tunnels.add(socket);
  socket.once("close", () => ctx.tunnels.delete(socket));
  const route = s.route;
  relay(socket, route, {
    pool: ctx.pool,
    connectTimeoutMs: ctx.connectTimeoutMs,
    retriesMax: lbSettings(route).retries ?? ctx.retriesMax,
    idleTimeoutMs: ctx.idleTimeoutMs,
    preamble: proxyPreamble(route, socket, Buffer.from(text, "latin1")),
    upgrade: {
      held: head,
      onTry: rec === null ? undefined : (id) => rec.tried(id),
      onStatus: rec === null ? undefined : (status) => rec.status = status,
      requestId: s.requestId,
    },
    key: requestKey(route, s.req, s.client),
    first: route.balancer.policy === "sticky_cookie"
      ? cookieTarget(ctx.pool, route, s.req.rawHeaders)
      : null,
    onFail: (why) => answer({ status: 502, text: `bad gateway: service ${route.service}: ${why}` }),
  });
}
