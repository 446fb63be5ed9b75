/**
 * What the ACME manager needs of a protocol client (RFC 8555): the subset of `AcmeClient`
 * (client.ts) it calls, as an interface, so the state machine is tested with a fake CA and the
 * agent hands it the real client.
 *
 * @module
 */

/** An order as the CA shows it (RFC 8555 §7.1.3), with its URL. */
export interface OrderInfo {
  url: string;
  status: string;
  /** RFC 3339 time the order expires, when the CA says. */
  expires?: string;
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: ProblemInfo;
  /** From Retry-After: when to look again (RFC 8555 §7.4). */
  retryAfterMs?: number;
}

/** A challenge of an authorization (RFC 8555 §7.1.5). */
export interface ChallengeInfo {
  type: string;
  url: string;
  /** Present for http-01 and tls-alpn-01. */
  token?: string;
  status: string;
  error?: ProblemInfo;
}

/** An authorization (RFC 8555 §7.1.4). */
export interface AuthorizationInfo {
  status: string;
  /** The DNS name it authorizes. */
  name: string;
  challenges: ChallengeInfo[];
  /** From Retry-After: when to look again (RFC 8555 §7.5.1). */
  retryAfterMs?: number;
}

/** An ACME problem document (RFC 8555 §6.7). */
export interface ProblemInfo {
  type?: string;
  detail?: string;
}

/** The calls the manager makes; one client per account (directory, key, account URL). */
export interface AcmeApi {
  /** Registers the account key (or finds its account: the same key, the same account). */
  account(email?: string): Promise<{ url: string }>;
  newOrder(names: string[]): Promise<OrderInfo>;
  getOrder(url: string): Promise<OrderInfo>;
  getAuthorization(url: string): Promise<AuthorizationInfo>;
  keyAuthorization(token: string): string | Promise<string>;
  respond(challengeUrl: string): Promise<unknown>;
  finalize(order: OrderInfo, csrDer: Uint8Array): Promise<OrderInfo>;
  /** The certificate chain, PEM, leaf first. */
  downloadCertificate(url: string): Promise<string>;
  /** Frees what the client holds (its connection pool); it is not used again. */
  close?(): void;
}

/** How the manager gets a client for an account. */
export type AcmeApiFactory = (o: {
  directoryUrl: string;
  accountKey: JsonWebKey;
  accountUrl?: string;
}) => AcmeApi;

/** What an error from a client says: the CA's problem type and detail, and Retry-After. */
export interface ErrorFacts {
  /** `urn:ietf:params:acme:error:rateLimited` … or "" for a network error. */
  type: string;
  text: string;
  /** HTTP status when the CA answered. */
  status: number | null;
  retryAfterMs: number | null;
}

/** The facts of anything a client threw (an `AcmeError`, a network error, a bug). */
export function errorFacts(e: unknown): ErrorFacts {
  const o = (typeof e === "object" && e !== null ? e : {}) as Record<string, unknown>;
  const type = typeof o.type === "string" ? o.type : "";
  const detail = typeof o.detail === "string"
    ? o.detail
    : e instanceof Error
    ? e.message
    : String(e);
  const shortType = type.replace(/^urn:ietf:params:acme:error:/, "");
  return {
    type,
    text: shortType === "" ? detail : `${shortType}: ${detail}`,
    status: typeof o.status === "number" ? o.status : null,
    retryAfterMs: typeof o.retryAfterMs === "number" && o.retryAfterMs >= 0 ? o.retryAfterMs : null,
  };
}
