/**
 * When a check result becomes the instance's stored check result: Consul's
 * `success_before_passing` and `failures_before_critical`, as a pure function of the result
 * streak and the stored result.
 *
 * - A result equal to the stored status and output changes nothing (no proposal).
 * - The first result after a check starts (or its definition changes), and any result while the
 *   store holds none (a new container: "awaiting first check"), applies at once: such an
 *   instance is served after its first success.
 * - A result with the stored status but another output (say 500 → 503 while critical) applies
 *   at once: the status does not flip, only the reason shown.
 * - A flip to passing needs `successesBeforePassing` consecutive passing results.
 * - A flip away from passing needs `failuresBeforeCritical` consecutive non-passing results
 *   (warning or critical; the latest one is proposed).
 * - Between warning and critical the latest result applies at once (neither is served).
 *
 * @module
 */
import type { CheckResult } from "../store/mod.ts";
import type { ProbeResult } from "./probe.ts";

/** Consecutive passing results needed to flip an instance to passing. */
export const SUCCESSES_BEFORE_PASSING_DEFAULT = 1;
/** Consecutive failing results needed to flip a passing instance away from passing. */
export const FAILURES_BEFORE_CRITICAL_DEFAULT = 2;
/** Largest threshold accepted; the streak counters saturate here too. */
export const STREAK_MAX = 100;

export interface Thresholds {
  successesBeforePassing: number;
  failuresBeforeCritical: number;
}

/** The run history of one check that matters for hysteresis. */
export interface Streak {
  successes: number;
  failures: number;
  /** No result has been judged since the check (re)started. */
  first: boolean;
}

export const NEW_STREAK: Streak = { successes: 0, failures: 0, first: true };

/**
 * Judges one result against the stored state: returns the new streak and the result to propose,
 * or null when the store should stay as it is.
 */
export function judge(
  streak: Streak,
  result: ProbeResult,
  stored: CheckResult | null,
  thresholds: Thresholds,
): { streak: Streak; propose: ProbeResult | null } {
  const passed = result.status === "passing";
  const next: Streak = {
    successes: passed ? Math.min(streak.successes + 1, STREAK_MAX) : 0,
    failures: passed ? 0 : Math.min(streak.failures + 1, STREAK_MAX),
    first: false,
  };
  let applies: boolean;
  if (stored === null) applies = true;
  else if (result.status === stored.status) applies = result.output !== stored.output;
  else if (streak.first) applies = true;
  else if (passed) applies = next.successes >= thresholds.successesBeforePassing;
  else if (stored.status === "passing") {
    applies = next.failures >= thresholds.failuresBeforeCritical;
  } else applies = true;
  return { streak: next, propose: applies ? result : null };
}
