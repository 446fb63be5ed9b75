/**
 * The request pipeline of an HTTP route: the middlewares its settings turn on (route keys such
 * as `berth.http.allow`, `berth.http.auth.basic`), in the one fixed order of order.ts (README,
 * "Middlewares").
 *
 * - A `MiddlewarePart` builds a route's `Middleware` from its `RouteSettings` (null: the
 *   settings do not turn it on). The route's `Chain` is built once per settings object
 *   (`RouteSettings.compiled`) and reused by every request on the route.
 * - Request stages run in order before the request is forwarded; each may edit the
 *   `RequestState` (`url`, `headers`) or answer (401, 403, 429, a redirect), which ends the
 *   request. A stage returns synchronously (the common case: the next one runs in the same
 *   turn) or a promise (an auth cache miss): the pipeline then waits for it, the request body
 *   staying paused meanwhile.
 * - Response stages wrap the sink the response is written to, the first of the order seeing
 *   the instance's response first (`SinkWrapper` is a base that passes everything through).
 *   An answer a request stage gives goes to the client without them.
 *
 * A route with no settings has the empty chain: nothing is built, nothing runs.
 *
 * @module
 */
import type { DispatchSink } from "../conn_info.ts";
import type { Exchange, PlainAnswer } from "../exchange.ts";
import type { RoutePart, RouteSettings } from "../route_settings.ts";
import { errorText } from "../../lib/error_text.ts";

/**
 * One request on its way through a route's middlewares to an instance: the part of its
 * `Exchange` (exchange.ts) they see.
 */
export type RequestState = Pick<
  Exchange,
  | "req"
  | "conn"
  | "route"
  | "client"
  | "host"
  | "prefix"
  | "url"
  | "headers"
  | "requestId"
>;

/** What one middleware does on one route (built by its `MiddlewarePart`). */
export interface Middleware {
  readonly name: string;
  /** Before forwarding: an answer (401/403/429/30x) ends the request; null goes on. */
  request?(s: RequestState): PlainAnswer | null | Promise<PlainAnswer | null>;
  /** Wraps the response sink (status/headers/body on the way back). */
  response?(s: RequestState, res: DispatchSink): DispatchSink;
}

/** A middleware kind: builds its `Middleware` for a route's settings, or null when off. */
export interface MiddlewarePart {
  readonly name: string;
  build(s: RouteSettings): Middleware | null;
}

/** A route's middlewares, in order, by stage. */
export interface Chain {
  /** Names of the middlewares on, in order (explain, tests). */
  readonly names: readonly string[];
  /** Those with a request stage, in order. */
  readonly request: readonly Middleware[];
  /** Those with a response stage, in order (the first sees the instance's response first). */
  readonly response: readonly Middleware[];
}

/** The chain of a route no middleware is on. */
export const EMPTY_CHAIN: Chain = Object.freeze({
  names: Object.freeze([]),
  request: Object.freeze([]),
  response: Object.freeze([]),
});

/** The chain `parts` (in order) build for `settings`. */
export function buildChain(parts: readonly MiddlewarePart[], settings: RouteSettings): Chain {
  const names: string[] = [];
  const request: Middleware[] = [];
  const response: Middleware[] = [];
  for (const part of parts) {
    const m = part.build(settings);
    if (m === null) continue;
    names.push(m.name);
    if (m.request !== undefined) request.push(m);
    if (m.response !== undefined) response.push(m);
  }
  return names.length === 0 ? EMPTY_CHAIN : { names, request, response };
}

/** The route part that compiles `parts` into a chain (order.ts makes the one in use). */
export function chainPart(parts: readonly MiddlewarePart[]): RoutePart<Chain> {
  return { name: "middlewares", compile: (s) => buildChain(parts, s) };
}

/** The answer when a middleware throws or its promise rejects (a bug, logged). */
function failed(m: Middleware, e: unknown, log: (line: string) => void): PlainAnswer {
  log(`proxy: middleware ${m.name} failed: ${errorText(e)}`);
  return { status: 500, text: `internal error in middleware ${m.name}` };
}

/**
 * Runs the request stages of `chain` on `s` from stage `from`, then `done(answer)` exactly
 * once: the first stage's answer, or null when every stage let the request on. Synchronous
 * while the stages are; a stage that returns a promise is waited for. When `done` throws after
 * such a wait (nobody up the stack would catch it), the error is logged and `abort` ends the
 * request (the caller closes its sink or socket): never an unhandled rejection.
 */
export function runRequestStages(
  chain: Chain,
  s: RequestState,
  done: (answer: PlainAnswer | null) => void,
  opts: { log: (line: string) => void; from?: number; abort?: () => void },
): void {
  const stages = chain.request;
  for (let i = opts.from ?? 0; i < stages.length; i++) {
    const m = stages[i]!;
    let r: PlainAnswer | null | Promise<PlainAnswer | null>;
    try {
      r = m.request!(s);
    } catch (e) {
      return done(failed(m, e, opts.log));
    }
    if (r === null) continue;
    if (r instanceof Promise) {
      const guarded = (fn: () => void) => {
        try {
          fn();
        } catch (e) {
          opts.log(`proxy: request after middleware ${m.name} failed: ${errorText(e)}`);
          try {
            opts.abort?.();
          } catch { /* the sink is gone already */ }
        }
      };
      r.then(
        (a) =>
          guarded(() =>
            a === null ? runRequestStages(chain, s, done, { ...opts, from: i + 1 }) : done(a)
          ),
        (e) => guarded(() => done(failed(m, e, opts.log))),
      );
      return;
    }
    return done(r);
  }
  done(null);
}

/** `sink` wrapped by the response stages of `chain` (the first one outermost). */
export function wrapResponse(chain: Chain, s: RequestState, sink: DispatchSink): DispatchSink {
  const stages = chain.response;
  for (let i = stages.length - 1; i >= 0; i--) sink = stages[i]!.response!(s, sink);
  return sink;
}

/**
 * A sink that passes everything to `inner`: extend it and override what a response stage
 * changes (`writeHead` for headers, `write`/`end` for the body). `onAbort`, `forwarded` and
 * `shouldKeepAlive` are the inner sink's own; `writeTrailers` exists when the inner one has it.
 */
export class SinkWrapper implements DispatchSink {
  readonly inner: DispatchSink;
  declare writeTrailers?: (headers: readonly string[]) => void;

  constructor(inner: DispatchSink) {
    this.inner = inner;
    if (inner.writeTrailers !== undefined) {
      this.writeTrailers = (headers) => inner.writeTrailers!(headers);
    }
  }

  get destroyed(): boolean {
    return this.inner.destroyed;
  }
  get headersSent(): boolean {
    return this.inner.headersSent;
  }
  get writableEnded(): boolean {
    return this.inner.writableEnded;
  }
  get shouldKeepAlive(): boolean {
    return this.inner.shouldKeepAlive;
  }
  set shouldKeepAlive(v: boolean) {
    this.inner.shouldKeepAlive = v;
  }
  get forwarded(): boolean {
    return this.inner.forwarded ?? false;
  }
  set forwarded(v: boolean) {
    this.inner.forwarded = v;
  }
  get onAbort(): (() => void) | null {
    return this.inner.onAbort;
  }
  set onAbort(fn: (() => void) | null) {
    this.inner.onAbort = fn;
  }
  writeHead(status: number, reason: string, headers: readonly string[]): void {
    this.inner.writeHead(status, reason, headers);
  }
  write(chunk: Uint8Array): boolean {
    return this.inner.write(chunk);
  }
  end(chunk?: Uint8Array): void {
    this.inner.end(chunk);
  }
  destroy(): void {
    this.inner.destroy();
  }
  once(event: "drain", fn: () => void): void {
    this.inner.once(event, fn);
  }
}
