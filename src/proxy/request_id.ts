/**
 * `X-Request-Id` (README "X-Request-Id"): a request keeps the id its client sent when it is sane
 * (1 to 128 visible ASCII characters) and its source trusted (`RequestIdPolicy`: anyone by
 * default, else the `--request-id-from` list), else gets a new one; the id goes to the instance
 * and back to the client on the response, and names the request in the access log.
 *
 * New ids are a per-process random prefix and a counter (`3f9c0a61d2e4-1k7`): unique across
 * processes, threads and restarts with overwhelming likelihood, and cheap (no randomness per
 * request).
 *
 * @module
 */

import { CidrList, cidrListOf } from "../lib/cidr.ts";

/** Longest client id kept. */
export const REQUEST_ID_CHARS_MAX = 128;

/** Whether a client's X-Request-Id is kept: 1 to 128 visible ASCII characters (no space). */
export function saneRequestId(value: string): boolean {
  const n = value.length;
  if (n === 0 || n > REQUEST_ID_CHARS_MAX) return false;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** Makes request ids: `prefix-counter` (counter in base 36). */
export class RequestIds {
  readonly #prefix: string;
  #next = 0;

  /** `prefix`: default 12 random hex digits. */
  constructor(prefix?: string) {
    this.#prefix = (prefix ?? randomHex(6)) + "-";
  }

  next(): string {
    return this.#prefix + (this.#next++).toString(36);
  }
}

function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/**
 * `--request-id-from` as canonical CIDRs (config.ts) → the sources a `RequestIdPolicy` trusts:
 * null or absent (`any`, the default) → null, anyone; empty (`none`) → an empty list, no one.
 */
export function requestIdSources(cidrs: readonly string[] | null | undefined): CidrList | null {
  return cidrs == null ? null : cidrListOf(cidrs) ?? new CidrList([]);
}

/**
 * Which id a request gets: the client's own sane one when its source is trusted, else a new one.
 * `from` null trusts anyone (the default: an id a client sets is forwarded); a list trusts the
 * clients in it and, on a connection that began with a PROXY header, the balancer that sent it
 * (the hop that set or passed the id); an empty list trusts no one (as Envoy at the edge).
 */
export class RequestIdPolicy {
  /** New ids (also for requests refused before they have a head). */
  readonly ids: RequestIds;
  readonly #from: CidrList | null;
  readonly #log: (line: string) => void;
  /** An id from a source the list leaves out was replaced (logged once). */
  #replacedLogged = false;

  constructor(from: CidrList | null, log: (line: string) => void, ids = new RequestIds()) {
    this.#from = from;
    this.#log = log;
    this.ids = ids;
  }

  /**
   * The request's id. `own`: the client's sane id, if any; `client`: its address as
   * `berth.http.allow` sees it; `proxiedBy`: the balancer that sent its connection's PROXY header.
   */
  idOf(own: string | undefined, client: string, proxiedBy: string | undefined): string {
    if (own === undefined) return this.ids.next();
    const from = this.#from;
    if (from === null || from.has(client)) return own;
    if (proxiedBy !== undefined && from.has(proxiedBy)) return own;
    // A list that names sources (not `none`) and leaves out one that sets ids: say so once (a
    // gateway's address not listed, or a wrong CIDR).
    if (!this.#replacedLogged && from.cidrs.length > 0) {
      this.#replacedLogged = true;
      const via = proxiedBy === undefined ? "" : ` (PROXY header from ${proxiedBy})`;
      this.#log(
        `proxy: a request from ${client}${via} came with its own X-Request-Id and got a new one ` +
          `(logged once): ${
            proxiedBy === undefined ? "the address is not" : "neither address is"
          }` +
          ` in --request-id-from (list the proxy or gateway in front that sets it)`,
      );
    }
    return this.ids.next();
  }
}
