/**
 * `X-Request-Id` (README "X-Request-Id"): a request keeps the id its client sent when it is sane
 * (1 to 128 visible ASCII characters) and the client a `requestIdFrom` source (http_proxy.ts),
 * else gets a new one; the id goes to the instance and
 * back to the client on the response, and names the request in the access log.
 *
 * New ids are a per-process random prefix and a counter (`3f9c0a61d2e4-1k7`): unique across
 * processes, threads and restarts with overwhelming likelihood, and cheap (no randomness per
 * request).
 *
 * @module
 */

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
