/**
 * `RequestMeter`: counts one request into the metrics (a `RequestCounter`) without a record nor
 * a sink wrapper: the client's sink (`Reply`, `H2Reply`) keeps the status and body bytes it
 * sends and tells its `meter` once when the response is over. The proxy uses it when no
 * observer wants records (no access log): the default request path then pays for two clock
 * reads, this object, the seven counts it hands the counter's `end` and the counter's updates. The counts are those a `RecordingSink` record
 * gives (request_record.ts): the status sent when the response ends; when the proxy cuts it,
 * that status or 502 if none went out; 499 when the client leaves first. One difference: the
 * 408 the HTTP/2 frontend answers itself for an idle request body counts its body bytes here
 * (they reach the client), none in a record (it is made before that answer).
 *
 * @module
 */
import type { ClientRequest, SinkMeter } from "./client_conn.ts";
import type { RecordSource, RequestCounter } from "./request_record.ts";

/** One request's count (see the module comment); `routed` as `RecordingSink.routed`. */
export class RequestMeter implements SinkMeter {
  readonly #counter: RequestCounter;
  readonly #req: ClientRequest;
  #service: string | null = null;
  #route: string | null = null;
  #source: RecordSource | null = null;
  #begun = false;
  #done = false;
  readonly #mono0 = performance.now();

  constructor(counter: RequestCounter, req: ClientRequest) {
    this.#counter = counter;
    this.#req = req;
  }

  /** The request is routed (`service` null: no route): the counter's `begin`. */
  routed(service: string | null, route: string | null, source: RecordSource | null): void {
    this.#service = service;
    this.#route = route;
    this.#source = source;
    this.#begun = true;
    this.#counter.begin(service, route);
  }

  /** The response is over (called by the client's sink, once). */
  done(status: number, bytesOut: number): void {
    if (this.#done) return;
    this.#done = true;
    if (!this.#begun) this.routed(null, null, null); // answered before routing (ACME)
    const source = this.#source;
    try {
      this.#counter.end({
        service: this.#service,
        route: this.#route,
        status,
        bytesIn: this.#req.body?.bytes ?? 0,
        bytesOut,
        attempts: source?.attempts ?? 0,
        durationMs: performance.now() - this.#mono0,
      });
    } catch {
      // A counter's bug must not cost the request (as notifyEnd, request_record.ts).
    }
  }
}
