/**
 * How a service asks for a certificate (the `berth.tls` label or API Meta): the meta key and the
 * modes. validate.ts holds the rule that uses them; src/acme/names.ts reads it.
 *
 * @module
 */

/** Instance meta key: `acme` asks the cluster to order certificates for the service's hosts. */
export const TLS_META_KEY = "berth.tls";
/** The values `berth.tls` takes. */
export const TLS_MODES = ["acme"] as const;
export type TlsMode = typeof TLS_MODES[number];

/** A mode (any case, spaces around ignored) → the mode; null for an unknown one. */
export function parseTlsMode(s: string): TlsMode | null {
  const t = s.trim().toLowerCase();
  return (TLS_MODES as readonly string[]).includes(t) ? t as TlsMode : null;
}
