/**
 * The certificates the HTTPS listener serves, from the replicated store's edge certificates
 * with their keys opened (`openKey`: the agent's secret box). A key is opened once per
 * certificate (by fingerprint and sealed text); one that cannot be opened (a member without
 * the cluster key, a damaged value) leaves its certificate out, logged once, not at each
 * reload.
 *
 * @module
 */
import type { EdgeCert } from "../store/mod.ts";
import type { ServedCert } from "./sni_index.ts";
import { errorText } from "../lib/error_text.ts";

export interface ServedCertsOptions {
  /** The store's edge certificates (`store.edgeCerts()`). */
  edgeCerts: () => readonly EdgeCert[];
  /** The certificate's private key in PEM; throws when it cannot be opened. */
  openKey: (cert: EdgeCert) => string;
  /**
   * Whether keys can be opened at all (this member has the cluster key); while not, no
   * certificate is served, said in one line. Default: always.
   */
  keysReady?: () => boolean;
  log: (line: string) => void;
}

/** `certs()` for ProxyTlsOptions; see the module comment. */
export class ServedCerts {
  readonly #opts: ServedCertsOptions;
  /** `fingerprint sealed` → the opened key, or the failure already logged. */
  #keys = new Map<string, { keyPem: string } | { failed: true }>();
  #waitingLogged = false;

  constructor(opts: ServedCertsOptions) {
    this.#opts = opts;
  }

  /** The certificates whose key opens, keys in clear. */
  certs(): ServedCert[] {
    if (this.#opts.keysReady && !this.#opts.keysReady()) {
      if (!this.#waitingLogged) {
        this.#opts.log("proxy: no certificate served until this member has the cluster key");
      }
      this.#waitingLogged = true;
      return [];
    }
    this.#waitingLogged = false;
    const keys = new Map<string, { keyPem: string } | { failed: true }>();
    const out: ServedCert[] = [];
    for (const c of this.#opts.edgeCerts()) {
      const id = `${c.fingerprint} ${c.keySealed}`;
      let key = this.#keys.get(id) ?? keys.get(id);
      if (key === undefined) {
        try {
          key = { keyPem: this.#opts.openKey(c) };
        } catch (e) {
          key = { failed: true };
          this.#opts.log(`proxy: certificate ${c.name} not served: its key: ${errorText(e)}`);
        }
      }
      keys.set(id, key);
      if (!("keyPem" in key)) continue;
      out.push({
        name: c.name,
        names: c.names,
        certPem: c.certPem,
        keyPem: key.keyPem,
        isDefault: c.isDefault,
        fingerprint: c.fingerprint,
        notAfter: c.notAfter,
      });
    }
    this.#keys = keys; // removed certificates' keys go
    return out;
  }
}
