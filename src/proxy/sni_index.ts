/**
 * Which certificate the HTTPS listener serves for a TLS server name (SNI): the certificate
 * naming it exactly, else one with a wildcard for its parent (`*.example.com` covers
 * `a.example.com`, not `example.com` nor `a.b.example.com`), else the default certificate, else
 * none (the handshake fails). Among several certificates for one name the one valid longest
 * wins (latest `notAfter`; a renewed certificate takes over from the old one at once). Pure
 * data, rebuilt whole when the certificates change (they change rarely).
 *
 * @module
 */

/** A certificate as the proxy serves it: the key in clear (opened by the agent). */
export interface ServedCert {
  /** The name it is managed by (`berth cert add --name`). */
  name: string;
  /** SAN DNS names, lower-case; may be `*.example.com`. */
  names: readonly string[];
  /** PEM: the leaf, then its chain. */
  certPem: string;
  /** PEM private key. */
  keyPem: string;
  /** Served for a name no other certificate covers. */
  isDefault: boolean;
  /** sha256 of the leaf's DER, lower-case hex: the cache key of its TLS context. */
  fingerprint: string;
  /** ms since the epoch. */
  notAfter: number;
}

/** The longest server name looked up (a DNS name); longer ones match nothing. */
export const SERVERNAME_CHARS_MAX = 253;

/** Lower case, without a trailing dot: how names are compared. */
export function normalizeServername(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

/** Whether `a` should be served rather than `b` for a name both cover. */
function better(a: ServedCert, b: ServedCert): boolean {
  if (a.notAfter !== b.notAfter) return a.notAfter > b.notAfter;
  return a.fingerprint < b.fingerprint; // any fixed order, so every member picks the same
}

/** Server name → certificate, by exact name, one-label wildcard, then the default. */
export class SniIndex {
  static readonly EMPTY = new SniIndex([]);

  /** Exact names → certificate. */
  readonly #exact = new Map<string, ServedCert>();
  /** `example.com` for `*.example.com` → certificate. */
  readonly #wildcard = new Map<string, ServedCert>();
  readonly #default: ServedCert | null = null;
  /** Every certificate given, in order. */
  readonly certs: readonly ServedCert[];

  constructor(certs: readonly ServedCert[]) {
    this.certs = certs;
    let def: ServedCert | null = null;
    for (const c of certs) {
      if (c.isDefault && (def === null || better(c, def))) def = c;
      for (const raw of c.names) {
        const name = normalizeServername(raw);
        const [map, key] = name.startsWith("*.")
          ? [this.#wildcard, name.slice(2)]
          : [this.#exact, name];
        const had = map.get(key);
        if (had === undefined || better(c, had)) map.set(key, c);
      }
    }
    this.#default = def;
  }

  /** The certificate a name has of its own (exact or wildcard), not the default; or null. */
  covering(servername: string): ServedCert | null {
    if (servername === "" || servername.length > SERVERNAME_CHARS_MAX) return null;
    const name = normalizeServername(servername);
    const exact = this.#exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf(".");
    if (dot <= 0) return null;
    return this.#wildcard.get(name.slice(dot + 1)) ?? null;
  }

  /**
   * The certificate to serve for `servername` ("" when the client sent none): the covering
   * one, else the default; null when there is none (the handshake fails).
   */
  lookup(servername: string): ServedCert | null {
    return this.covering(servername) ?? this.#default;
  }
}
