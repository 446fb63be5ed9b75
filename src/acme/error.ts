/**
 * `AcmeError`: what every failed ACME call throws. A CA's problem document (RFC 8555 §6.7,
 * RFC 7807) keeps its `type`, `detail`, HTTP status and Retry-After; failures on berth's side of
 * the wire get `berth:acme:*` types, so a caller can tell "the CA said no" from "no answer".
 *
 * @module
 */

const ACME = "urn:ietf:params:acme:error:";

/** The problem types callers branch on (RFC 8555 §6.7), plus berth's own. */
export const PROBLEM = {
  badNonce: `${ACME}badNonce`,
  accountDoesNotExist: `${ACME}accountDoesNotExist`,
  rateLimited: `${ACME}rateLimited`,
  unauthorized: `${ACME}unauthorized`,
  connection: `${ACME}connection`,
  malformed: `${ACME}malformed`,
  /** No answer: refused, reset, timed out, TLS failure. */
  network: "berth:acme:network",
  /** An answer that is not what RFC 8555 says (bad JSON, missing field, oversized body). */
  badResponse: "berth:acme:badResponse",
  /** An authorization or order that ended invalid (the CA's reason is in `detail`). */
  invalid: "berth:acme:invalid",
  /** Polling gave up before the CA finished. */
  timeout: "berth:acme:timeout",
} as const;

/** One sub-problem of a multi-identifier order (RFC 8555 §6.7.1). */
export interface AcmeSubproblem {
  type: string;
  detail: string;
  identifier?: string;
}

/** What AcmeError is made of. */
export interface AcmeErrorInit {
  type: string;
  detail: string;
  /** HTTP status of the answer; 0 when there was none. */
  status: number;
  /** From Retry-After, when the CA sent one (rate limits, 503). */
  retryAfterMs?: number;
  subproblems?: AcmeSubproblem[];
  /** The request's URL. */
  url?: string;
  /** What berth was doing ("newOrder", "poll authorization"); prefixes the message. */
  op?: string;
}

/** A failed ACME call. `message` is one line: "ACME <op>: <detail> (<type>, HTTP <status>)". */
export class AcmeError extends Error {
  readonly type: string;
  readonly detail: string;
  readonly status: number;
  readonly retryAfterMs?: number;
  readonly subproblems: AcmeSubproblem[];
  readonly url?: string;

  constructor(init: AcmeErrorInit) {
    const where = init.status > 0 ? `, HTTP ${init.status}` : "";
    const op = init.op === undefined ? "ACME" : `ACME ${init.op}`;
    super(oneLine(`${op}: ${init.detail} (${init.type}${where})`));
    this.name = "AcmeError";
    this.type = init.type;
    this.detail = init.detail;
    this.status = init.status;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
    this.subproblems = init.subproblems ?? [];
    if (init.url !== undefined) this.url = init.url;
  }
}

/** Longest `detail` kept from a CA (a longer one is cut with `…`). */
export const DETAIL_CHARS_MAX = 1000;
const SUBPROBLEMS_MAX = 100;

/** Text from a CA, on one line and at most DETAIL_CHARS_MAX characters. */
export function oneLine(s: string): string {
  const t = s.replace(/\s+/g, " ").trim();
  return t.length <= DETAIL_CHARS_MAX ? t : `${t.slice(0, DETAIL_CHARS_MAX - 1)}…`;
}

/**
 * The problem a CA's JSON value describes (an error answer's body or an `error` field), or one
 * of type badResponse saying why it is not a problem document.
 */
export function problemFrom(
  value: unknown,
  o: { status: number; url?: string; retryAfterMs?: number; op?: string },
): AcmeError {
  const base = { status: o.status, url: o.url, retryAfterMs: o.retryAfterMs, op: o.op };
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return new AcmeError({
      ...base,
      type: PROBLEM.badResponse,
      detail: "the CA's error is not a JSON object",
    });
  }
  const v = value as Record<string, unknown>;
  const type = typeof v.type === "string" && v.type.length <= 256 ? v.type : "about:blank";
  const detail = typeof v.detail === "string" ? oneLine(v.detail) : "(no detail)";
  const subproblems: AcmeSubproblem[] = [];
  if (Array.isArray(v.subproblems)) {
    for (const s of v.subproblems.slice(0, SUBPROBLEMS_MAX)) {
      if (typeof s !== "object" || s === null) continue;
      const sp = s as Record<string, unknown>;
      const id = sp.identifier as Record<string, unknown> | undefined;
      subproblems.push({
        type: typeof sp.type === "string" ? sp.type.slice(0, 256) : "about:blank",
        detail: typeof sp.detail === "string" ? oneLine(sp.detail) : "(no detail)",
        ...(typeof id?.value === "string" ? { identifier: id.value.slice(0, 253) } : {}),
      });
    }
  }
  return new AcmeError({ ...base, type, detail, subproblems });
}
