/**
 * Service names: one DNS label of 1 to 63 letters, digits, `-` or `_`, not starting with `-`, so
 * a name is also a label under `.service.DOMAIN`. The store's rule (src/store/instance_rules.ts) and
 * the agent's `--dns-service-ttl` (src/config.ts) both check it here. A leaf module.
 *
 * @module
 */

/** Longest service name: one DNS label. */
export const SERVICE_NAME_CHARS_MAX = 63;

/** What a service name looks like, for messages. */
export const SERVICE_NAME_EXPECTED =
  `a service name of 1-${SERVICE_NAME_CHARS_MAX} letters, digits, - or _`;

/** Whether `s` is a valid service name. */
export function isServiceName(s: string): boolean {
  return s.length <= SERVICE_NAME_CHARS_MAX && /^[A-Za-z0-9_][A-Za-z0-9_-]*$/.test(s);
}
