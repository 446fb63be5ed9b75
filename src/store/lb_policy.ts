/**
 * The proxy's balancing policies as a service names them (the `berth.lb` label or API Meta):
 * canonical names, accepted spellings, and the meta key. validate.ts holds the rule that uses them.
 *
 * @module
 */

/** Balancing policies of the proxy; the first is the default. */
export const LB_POLICIES = ["round_robin", "least_conn", "p2c", "hash", "sticky_cookie"] as const;
export type LbPolicy = typeof LB_POLICIES[number];
/** Instance meta key selecting a service's policy (the `berth.lb` label or API Meta). */
export const LB_META_KEY = "berth.lb";
/** Other spellings accepted for a policy. */
const LB_ALIASES: Record<string, LbPolicy> = {
  "round-robin": "round_robin",
  roundrobin: "round_robin",
  rr: "round_robin",
  "least-conn": "least_conn",
  leastconn: "least_conn",
  "power-of-two": "p2c",
  power_of_two: "p2c",
  "sticky-cookie": "sticky_cookie",
  sticky: "sticky_cookie",
};

/** A policy name or alias (any case) → the policy; `null` for an unknown one. */
export function parseLbPolicy(s: string): LbPolicy | null {
  const t = s.trim().toLowerCase();
  return (LB_POLICIES as readonly string[]).includes(t) ? t as LbPolicy : LB_ALIASES[t] ?? null;
}
