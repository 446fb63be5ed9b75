/**
 * Test helpers for middleware units: a `RequestState` and `RouteSettings` without a proxy.
 *
 * @module
 */
import type { ConnInfo } from "../conn_info.ts";
import type { ServiceRoute } from "../routes.ts";
import { RouteSettings } from "../route_settings.ts";
import type { Middleware, MiddlewarePart, RequestState } from "./pipeline.ts";
import type { PlainAnswer } from "../exchange.ts";

/** Settings holding `meta` (canonical values, as stored). */
export function settingsOf(meta: Record<string, string>): RouteSettings {
  return RouteSettings.fromMeta(meta);
}

/** `part` built for `meta`; throws when it is off. */
export function built(part: MiddlewarePart, meta: Record<string, string>): Middleware {
  const m = part.build(settingsOf(meta));
  if (m === null) throw new Error(`${part.name} is off for ${JSON.stringify(meta)}`);
  return m;
}

/** A request state of a route of service `web` (fields overridable). */
export function stateOf(over: Partial<RequestState> & { url?: string } = {}): RequestState {
  const url = over.url ?? "/";
  const conn: ConnInfo = over.conn ?? { secure: false };
  return {
    req: { method: "GET", url, rawHeaders: [], remoteAddress: "127.0.0.1", body: null },
    conn,
    route: { service: "web" } as ServiceRoute,
    client: "127.0.0.1",
    host: "a.test",
    prefix: "/",
    headers: ["host", "a.test", "x-forwarded-for", "127.0.0.1"],
    requestId: "r1",
    ...over,
    url,
  };
}

/** The request stage's answer, awaited when it is a promise. */
export async function requestOf(m: Middleware, s: RequestState): Promise<PlainAnswer | null> {
  return await m.request!(s);
}
