/**
 * The ACME manager's times, pure: when a certificate is renewed, how long a name waits after
 * failures, how often an order in flight is looked at.
 *
 * @module
 */

/** First wait after a failure; it doubles with each further failure … */
export const BACKOFF_MIN_MS = 60_000;
/** … up to this. */
export const BACKOFF_MAX_MS = 86_400_000;
/** First look at an order in flight after a step; it grows by half each look … */
export const POLL_MIN_MS = 500;
/** … up to this. */
export const POLL_MAX_MS = 30_000;
/**
 * First wait after the CA failed a validation (the name does not reach this cluster: a name
 * routed here but pointing elsewhere, or a bogus one): it doubles from there. CAs limit failed
 * validations per name and account (Let's Encrypt: 5 an hour).
 */
export const VALIDATION_BACKOFF_MIN_MS = 3_600_000;
/**
 * New orders the leader makes in an hour at most, for all names: whatever the services ask
 * for, the cluster stays well inside a CA's per-account limits (Let's Encrypt: 300 new orders
 * in 3 hours), so bogus names cannot spend them and starve the renewals of real ones.
 */
export const NEW_ORDERS_PER_HOUR = 30;
/** Longest Retry-After honoured (a CA asking for more is waited on for this long). */
export const RETRY_AFTER_MAX_MS = BACKOFF_MAX_MS;

/** When a certificate valid from `notBefore` to `notAfter` is renewed: two-thirds in. */
export function renewAt(notBefore: number, notAfter: number): number {
  return notBefore + Math.floor((notAfter - notBefore) * 2 / 3);
}

/**
 * How long to wait after the `failures`-th failure in a row (1, 2, …): `firstMs` doubling
 * to BACKOFF_MAX_MS, and never less than the CA's Retry-After (capped at RETRY_AFTER_MAX_MS).
 */
export function backoffMs(
  failures: number,
  retryAfterMs: number | null = null,
  firstMs: number = BACKOFF_MIN_MS,
): number {
  const n = Math.max(1, failures);
  const doubled = n > 30 ? BACKOFF_MAX_MS : Math.min(BACKOFF_MAX_MS, firstMs * 2 ** (n - 1));
  const asked = retryAfterMs === null ? 0 : Math.min(retryAfterMs, RETRY_AFTER_MAX_MS);
  return Math.max(doubled, asked);
}

/** The next wait between looks at an order in flight, after `previousMs` (0: the first). */
export function nextPollMs(previousMs: number, retryAfterMs: number | null = null): number {
  const grown = previousMs <= 0 ? POLL_MIN_MS : Math.min(POLL_MAX_MS, Math.ceil(previousMs * 1.5));
  return retryAfterMs === null ? grown : Math.max(grown, Math.min(retryAfterMs, POLL_MAX_MS * 10));
}
