/**
 * One step of a name's order, as the leader takes it (manager.ts calls it, then records what it
 * returns). The replicated row (`AcmeNameSpec`) holds everything a step needs, so whichever
 * leader takes the next step resumes the same order by its URL:
 *
 * | the CA says the order is | the step                                                      |
 * |--------------------------|---------------------------------------------------------------|
 * | none yet, expired, gone  | a new order, and a new certificate key sealed into the row    |
 * | pending                  | per authorization: record the challenge's key authorization  |
 * |                          | (every member answers from the row), answer it on a later    |
 * |                          | step (the members have applied it by then, and the leader    |
 * |                          | hears from every member the CA may reach), wait              |
 * | ready                    | finalize with a CSR of the row's key; challenges dropped     |
 * | processing               | wait                                                          |
 * | valid                    | download: the certificate and its key are done                |
 * | invalid                  | a failure naming the CA's reason; the order is dropped        |
 *
 * A step never waits for the CA to change: it returns, and the manager looks again later.
 *
 * @module
 */
import type { SecretBox } from "../pki/cluster_key.ts";
import type { AcmeChallengeType, AcmeNameSpec, AcmeOrder } from "../store/mod.ts";
import type { AcmeApi, AuthorizationInfo, OrderInfo, ProblemInfo } from "./client_api.ts";

/** What a step needs besides the row. */
export interface StepContext {
  api: AcmeApi;
  box: SecretBox;
  /** The directory orders are made with now (`--acme-directory`). */
  directory: string;
  challengeType: AcmeChallengeType;
  nowMs: number;
  /** A new certificate key, PKCS#8 PEM (ECDSA P-256). */
  newKeyPem: () => string;
  /** The DER CSR for `name` signed with `keyPem`. */
  csr: (name: string, keyPem: string) => Uint8Array | Promise<Uint8Array>;
  /**
   * Why challenges must not be answered now (a member the CA may reach is not heard from:
   * edge_contact.ts), or null. A recorded challenge is answered on a later step then.
   */
  holdAnswers?: string | null;
}

/** What a step came to. */
export type StepOutcome =
  /** Record this row (it changed); look again soon (not before the CA's Retry-After). */
  | { kind: "record"; state: AcmeNameSpec; retryAfterMs?: number }
  /** Nothing to record; look again after a poll delay (at least the CA's Retry-After). */
  | { kind: "wait"; retryAfterMs?: number }
  /** The certificate chain (PEM) and its key: put it, and the name is done. */
  | { kind: "done"; certPem: string; keyPem: string };

/** A failure that ends the order (it is invalid, or cannot succeed): the next try orders anew. */
export class OrderFailed extends Error {
  override name = "OrderFailed";
}

/** An order the CA made invalid because a validation failed (the name does not reach us). */
export class ValidationFailed extends OrderFailed {
  override name = "ValidationFailed";
}

/** Whether the next step of `state` makes a new order at the CA. */
export function needsNewOrder(state: AcmeNameSpec, directory: string, nowMs: number): boolean {
  const order = state.order;
  return order === null || state.directory !== directory ||
    (order.expiresMs !== null && nowMs >= order.expiresMs);
}

/** The SecretBox context of an order's certificate key. */
export function orderKeyContext(name: string): string {
  return `acme-order-key:${name}`;
}

/** Takes one step of `state`'s order (module comment); throws on a failure. */
export async function stepOrder(state: AcmeNameSpec, cx: StepContext): Promise<StepOutcome> {
  const order = state.order;
  if (order === null || needsNewOrder(state, cx.directory, cx.nowMs)) {
    return { kind: "record", state: await newOrder(state, cx) };
  }
  const o = await cx.api.getOrder(order.url);
  const seen: AcmeOrder = {
    ...order,
    status: knownStatus(o.status),
    expiresMs: parseTime(o.expires) ?? order.expiresMs,
  };
  const changed = seen.status !== order.status || seen.expiresMs !== order.expiresMs;
  const base: AcmeNameSpec = { ...state, order: seen };
  // Every authorization valid: the challenges are no longer published.
  const validated: AcmeNameSpec = { ...base, challenges: [] };
  switch (o.status) {
    case "pending": {
      const later = { retryAfterMs: o.retryAfterMs };
      const next = await answerAuthorizations(base, o, cx, later);
      const after = later.retryAfterMs === undefined ? {} : { retryAfterMs: later.retryAfterMs };
      if (next !== null) return { kind: "record", state: next, ...after };
      return changed ? { kind: "record", state: base, ...after } : { kind: "wait", ...after };
    }
    case "ready": {
      const der = await cx.csr(state.name, openKey(cx.box, state.name, order.keySealed));
      const after = await cx.api.finalize(o, der);
      return {
        kind: "record",
        state: { ...validated, order: { ...seen, status: knownStatus(after.status) } },
      };
    }
    case "processing": {
      const after = o.retryAfterMs === undefined ? {} : { retryAfterMs: o.retryAfterMs };
      return changed || state.challenges.length > 0
        ? { kind: "record", state: validated, ...after }
        : { kind: "wait", ...after };
    }
    case "valid": {
      if (o.certificate === undefined) return { kind: "wait" };
      const certPem = await cx.api.downloadCertificate(o.certificate);
      return { kind: "done", certPem, keyPem: openKey(cx.box, state.name, order.keySealed) };
    }
    case "invalid":
      throw new ValidationFailed(
        problemText(o.error) ?? (await authorizationError(o, cx)) ??
          "the CA made the order invalid",
      );
    default:
      throw new OrderFailed(`the CA gave the order an unknown status ${JSON.stringify(o.status)}`);
  }
}

/** A new order at the CA for the name, with a new key sealed into the row. */
async function newOrder(state: AcmeNameSpec, cx: StepContext): Promise<AcmeNameSpec> {
  const o = await cx.api.newOrder([state.name]);
  const keyPem = cx.newKeyPem();
  const keySealed = cx.box.seal(new TextEncoder().encode(keyPem), orderKeyContext(state.name));
  return {
    ...state,
    directory: cx.directory,
    order: {
      url: o.url,
      status: knownStatus(o.status),
      expiresMs: parseTime(o.expires),
      keySealed,
    },
    challenges: [],
  };
}

/**
 * For each authorization not yet valid: records the challenge's key authorization first (the
 * row returned), answers a recorded one that is still pending. Null: nothing new to record.
 * `later.retryAfterMs` becomes the longest Retry-After of the authorizations still pending.
 */
async function answerAuthorizations(
  state: AcmeNameSpec,
  o: OrderInfo,
  cx: StepContext,
  later: { retryAfterMs?: number },
): Promise<AcmeNameSpec | null> {
  let challenges = state.challenges;
  let recorded = false;
  for (const url of o.authorizations) {
    const a = await cx.api.getAuthorization(url);
    if (a.status === "valid") continue;
    if (a.retryAfterMs !== undefined) {
      later.retryAfterMs = Math.max(later.retryAfterMs ?? 0, a.retryAfterMs);
    }
    if (a.status !== "pending") {
      throw new ValidationFailed(
        challengeError(a) ?? `the authorization for ${a.name} is ${a.status}`,
      );
    }
    const ch = a.challenges.find((c) => c.type === cx.challengeType);
    if (ch === undefined) {
      throw new OrderFailed(
        `the CA offers no ${cx.challengeType} challenge for ${a.name}`,
      );
    }
    if (ch.status === "invalid") {
      throw new ValidationFailed(problemText(ch.error) ?? `the ${ch.type} challenge failed`);
    }
    const token = ch.token;
    if (token === undefined) throw new OrderFailed(`the CA's ${ch.type} challenge has no token`);
    if (!challenges.some((c) => c.token === token)) {
      const keyAuthorization = await cx.api.keyAuthorization(token);
      challenges = [...challenges, { type: cx.challengeType, token, keyAuthorization }]
        .slice(-4);
      recorded = true;
    } else if (ch.status === "pending" && (cx.holdAnswers ?? null) === null) {
      await cx.api.respond(ch.url);
    }
  }
  return recorded ? { ...state, challenges } : null;
}

async function authorizationError(o: OrderInfo, cx: StepContext): Promise<string | null> {
  for (const url of o.authorizations) {
    try {
      const text = challengeError(await cx.api.getAuthorization(url));
      if (text !== null) return text;
    } catch {
      // the order's own state is reported instead
    }
  }
  return null;
}

function challengeError(a: AuthorizationInfo): string | null {
  for (const c of a.challenges) {
    const text = problemText(c.error);
    if (text !== null) return `${a.name}: ${text}`;
  }
  return null;
}

function problemText(p: ProblemInfo | undefined): string | null {
  if (p === undefined || (p.type === undefined && p.detail === undefined)) return null;
  const type = (p.type ?? "").replace(/^urn:ietf:params:acme:error:/, "");
  return type === "" ? p.detail ?? "" : `${type}: ${p.detail ?? ""}`;
}

function knownStatus(s: string): AcmeOrder["status"] {
  switch (s) {
    case "pending":
    case "ready":
    case "processing":
    case "valid":
    case "invalid":
      return s;
    default:
      throw new OrderFailed(`the CA gave the order an unknown status ${JSON.stringify(s)}`);
  }
}

function parseTime(t: string | undefined): number | null {
  if (t === undefined) return null;
  const ms = Date.parse(t);
  return Number.isFinite(ms) && ms >= 0 ? ms : null;
}

function openKey(box: SecretBox, name: string, sealed: string): string {
  return new TextDecoder().decode(box.open(sealed, orderKeyContext(name)));
}
