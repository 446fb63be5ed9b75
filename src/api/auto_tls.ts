/**
 * `--http-tls auto`: the API's certificate, issued by this member itself from the cluster CA in
 * its replica of the store (README, "Security"). Its key is made at start and kept in memory
 * only, so no further secret is written to disk; a restart issues a new one. The certificate
 * names the node (DNS), `localhost`, 127.0.0.1 and ::1, the `--http` address when it is one IP,
 * and the advertised address; it is reissued when two thirds of its lifetime have passed (the
 * member certificates' rule) or the CA changed. The CA key never leaves the store. It is a
 * server certificate only (no member identity, no client use): it cannot stand in for the
 * member in cluster traffic, where a certificate unknown to the revocation list would outlive
 * the member's removal.
 *
 * @module
 */
import { type Ca, generateKeyPair, issueCertificate, type KeyPair } from "../pki/mod.ts";
import type { HostPort } from "../lib/host_port.ts";
import type { TlsMaterial } from "./tls_files.ts";

/** Lifetime of an API certificate when none is configured (the member certificates' default). */
export const API_CERT_TTL_MS = 72 * 3_600_000;

export interface AutoTlsOptions {
  /** The cluster CA from the store; undefined until it is there (a joiner catching up). */
  ca: () => Ca | undefined;
  /** The cluster's id; undefined until this member is in a cluster. */
  clusterId: () => string | undefined;
  node: string;
  /** The `--http` listen address. */
  http: HostPort;
  /** The address other hosts reach this member at. */
  advertise: string;
  /** Certificate lifetime (default API_CERT_TTL_MS). */
  ttlMs?: number;
  now?: () => number;
}

interface Issued {
  tls: TlsMaterial;
  caPem: string;
  notBefore: number;
  notAfter: number;
}

export class AutoTls {
  readonly #o: AutoTlsOptions;
  readonly #key: KeyPair = generateKeyPair();
  #issued: Issued | null = null;

  constructor(o: AutoTlsOptions) {
    this.#o = o;
  }

  /** The addresses the certificate names besides the node. */
  get ipAddresses(): string[] {
    const { http, advertise } = this.#o;
    const wildcard = http.host === "0.0.0.0" || http.host === "::";
    return [...new Set(["127.0.0.1", "::1", ...(wildcard ? [] : [http.host]), advertise])];
  }

  /**
   * The certificate to serve: `changed` when it was (re)issued by this call; null while there
   * is no CA or cluster id yet. Throws one line when the CA cannot issue (expired).
   */
  current(): { tls: TlsMaterial; changed: boolean } | null {
    const ca = this.#o.ca();
    const clusterId = this.#o.clusterId();
    if (ca === undefined || clusterId === undefined) return null;
    const now = (this.#o.now ?? Date.now)();
    const held = this.#issued;
    if (held !== null && held.caPem === ca.certPem && now < this.renewAt()!) {
      return { tls: held.tls, changed: false };
    }
    const cert = issueCertificate({
      ca,
      publicKeySpkiDer: this.#key.publicKeySpkiDer,
      node: this.#o.node,
      clusterId,
      now: new Date(now),
      ttlMs: this.#o.ttlMs ?? API_CERT_TTL_MS,
      dnsNames: ["localhost"],
      ipAddresses: this.ipAddresses,
      serverOnly: true,
    });
    this.#issued = {
      tls: { certPem: cert.certPem, keyPem: this.#key.privateKeyPem },
      caPem: ca.certPem,
      notBefore: now,
      notAfter: cert.notAfter,
    };
    return { tls: this.#issued.tls, changed: true };
  }

  /** When the certificate held is due for renewal (ms since the epoch); null when none. */
  renewAt(): number | null {
    const i = this.#issued;
    return i === null ? null : i.notBefore + Math.floor((i.notAfter - i.notBefore) * 2 / 3);
  }
}

/** How long after a failed issue (say, an expired CA) the next try comes. */
const RETRY_MS = 60_000;

export interface AutoTlsServing {
  /** Starts the API listener over https (ApiServer.setTls then start). */
  start(tls: TlsMaterial): Promise<void>;
  /** Swaps a renewed certificate in. */
  renew(tls: TlsMaterial): Promise<void>;
  /** Calls `fn` after every change of the store; returns an unsubscribe. */
  subscribe(fn: () => void): () => void;
  log: (line: string) => void;
  /** The listener could not start: the agent cannot serve its API. */
  onFatal: (e: unknown) => void;
}

/** Longest wait between two looks at the certificate (a timer cannot wait longer than ~24 days). */
const LOOK_MS_MAX = 86_400_000;

/**
 * Serves the API with `auto`'s certificate: starts the listener as soon as there is one (at once
 * when the CA is already in the store, or this rejects as the listener's start does; else on
 * the store change that brings it, nothing listening meanwhile, never plain http), then renews
 * it on time. `stop()` ends the timers.
 */
export async function serveAutoTls(
  auto: AutoTls,
  s: AutoTlsServing,
): Promise<{ stop: () => void }> {
  let started = false;
  let stopped = false;
  let busy = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let unsubscribe: (() => void) | null = null;
  let failedOnce = false;
  const schedule = (atMs: number) => {
    clearTimeout(timer);
    const wait = Math.min(LOOK_MS_MAX, Math.max(0, atMs - Date.now()));
    timer = setTimeout(() => void step(), wait);
  };
  const step = async () => {
    if (stopped || busy) return;
    busy = true;
    try {
      let r: ReturnType<AutoTls["current"]>;
      try {
        r = auto.current();
        failedOnce = false;
      } catch (e) {
        if (!failedOnce) s.log(`api: cannot issue the API certificate: ${(e as Error).message}`);
        failedOnce = true;
        schedule(Date.now() + RETRY_MS);
        return;
      }
      if (r === null) return; // a later store change brings the CA
      if (!started) {
        started = true;
        unsubscribe?.();
        await s.start(r.tls);
      } else if (r.changed) {
        await s.renew(r.tls);
      }
      schedule(auto.renewAt()!);
    } catch (e) {
      stopped = true;
      clearTimeout(timer);
      s.onFatal(e);
    } finally {
      busy = false;
    }
  };
  const first = auto.current();
  if (first !== null) {
    started = true;
    await s.start(first.tls);
    schedule(auto.renewAt()!);
  } else {
    s.log("api: waiting for the cluster CA to serve https (--http-tls auto)");
    unsubscribe = s.subscribe(() => void step());
  }
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      unsubscribe?.();
    },
  };
}
