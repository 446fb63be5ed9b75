/**
 * Cluster security at run time (mutual TLS on, `RaftClusterOptions.tls`): this member's
 * credentials, made at bootstrap, got by enrollment and kept current. Who it lets in is
 * _peer_check.ts; what it answers as the CA (enrollments, renewals) is _issuer.ts.
 *
 * - **Credentials** (credentials.ts): made at bootstrap (the CA, from `--ca-cert/--ca-key` or new;
 *   this member's certificate; the first join token, written to `<dir>/join-token`), got by
 *   enrollment (enroll.ts) with a join token before joining, renewed through the leader once 2/3
 *   of their lifetime passed (same key), and swapped into the transport (`creds.current()` is
 *   asked for every new connection).
 * - **A restart after a stop longer than --cert-ttl** (the whole cluster may have been down): a
 *   member its own applied state lists issues itself a new certificate from the CA in its store
 *   and records it once a leader is elected (peers accept it meanwhile: _peer_check.ts). It needs
 *   no join token; one given is left unused and the log says so (a token never enrolls a current
 *   member's name: store/pki_state.ts). A member its state does not list enrolls again with
 *   `--join-token`, or stops saying so.
 *
 * @module
 */
import { randomInt } from "node:crypto";
import {
  caPin,
  type CertInfo,
  certInfo,
  CLOCK_SKEW_MS,
  createCa,
  hashSecret,
  issueCertificate,
  randomSecret,
  verifyIssued,
} from "../pki/mod.ts";
import { errorText } from "../lib/error_text.ts";
import { formatJoinToken, type JoinToken, newTokenId } from "../lib/join_token.ts";
import type { CertRecord, Command } from "../store/mod.ts";
import type { ClusterCore } from "./_core.ts";
import { JOIN_TOKEN_FILE, NodeCredentials } from "./credentials.ts";
import { writeFileAtomic } from "../lib/atomic_file.ts";
import { enroll, type Enrolled, joinWithoutToken } from "./enroll.ts";
import { RejectedError, TimeoutError } from "./errors.ts";
import { PROPOSAL_TIMEOUT_MS, type Proposals } from "./_proposals.ts";
import { forward } from "./_requests.ts";
import type { RemovedNotices } from "./_removed_notice.ts";
import type { ClusterTlsOptions } from "./types.ts";
import type { KeyShare } from "./_cluster_key.ts";
import { JOIN_BACKOFF_MS_MAX, JOIN_BACKOFF_MS_MIN } from "./_join.ts";
import { certRecord, Issuer } from "./_issuer.ts";
import { PeerCheck } from "./_peer_check.ts";

/** How long a failed renewal waits before the next try. */
export const RENEW_RETRY_MS = 5_000;
/** Longest one enrollment exchange takes before it counts as failed. */
export const ENROLL_TIMEOUT_MS = PROPOSAL_TIMEOUT_MS + 2000;

/** How long the join token a bootstrap makes lasts (kubeadm's); `berth token create` makes more. */
export const BOOTSTRAP_TOKEN_TTL_MS = 24 * 3_600_000;

/** How a data directory made without TLS is moved to a cluster with TLS (one line). */
export const MIGRATE_HINT = "TLS cannot be turned on in place: run `berth snapshot save FILE` " +
  "on the old cluster, start a new cluster with --bootstrap on an empty --data-dir, then run " +
  "`berth snapshot restore FILE` on it";

/** When a certificate issued at `info.notBefore` (+ clock skew) is renewed: 2/3 of its life. */
export function renewAt(info: Pick<CertInfo, "notBefore" | "notAfter">): number {
  // notBefore is backdated by the skew; a certificate cut short by its CA's end may not be.
  const skewed = info.notBefore + CLOCK_SKEW_MS;
  const issued = skewed < info.notAfter ? skewed : info.notBefore;
  return issued + Math.floor((info.notAfter - issued) * 2 / 3);
}

export class Security {
  readonly #c: ClusterCore;
  readonly #o: ClusterTlsOptions;
  readonly creds: NodeCredentials;
  /** The transport's check of peers and the drops on removal. */
  readonly peers: PeerCheck;
  /** The CA's requests (`pki.ca`, `pki.enroll`, `pki.renew`). */
  readonly issuer: Issuer;
  #proposals: Proposals | undefined;
  #keys: KeyShare | undefined;
  #renewing = false;
  #renewRetryAt = 0;
  #renewFailLogged = false;
  /** A certificate this member issued itself at start (prepareMember), until `cert.record` applied. */
  #selfIssued: CertRecord | undefined;
  #recordRetryAt = 0;
  #recording = false;
  /** The join token made at bootstrap (printed once by the agent). */
  bootstrapToken: string | undefined;

  constructor(core: ClusterCore, o: ClusterTlsOptions) {
    this.#c = core;
    this.#o = o;
    this.creds = new NodeCredentials(o.dir);
    this.peers = new PeerCheck(core, () => this.clusterId());
    this.issuer = new Issuer(core, o.certTtlMs);
  }

  /** Wires the units made after this one. */
  attach(proposals: Proposals, notices: RemovedNotices, keys: KeyShare): void {
    this.#proposals = proposals;
    this.#keys = keys;
    this.peers.attach(notices);
    this.issuer.attach(proposals, keys);
  }

  /** Our cluster's id: the identity's, or before joining, our certificate's. */
  clusterId(): string | undefined {
    return this.#c.identity?.clusterId ?? this.creds.info?.clusterId;
  }

  // ---------------------------------------------------------------- start

  /**
   * Before the transport starts: a data directory of a cluster without TLS is refused (how to
   * migrate). A member whose certificate expired (stopped longer than --cert-ttl) and whose
   * applied state lists it as a member issues itself a new one from the CA in its store (every
   * member holds the CA key; the whole cluster may have been stopped, none could enroll it) and
   * records it once a leader is elected (tick). Otherwise a member whose certificate is missing
   * or expired and that is no member in its own state re-enrolls with `--join-token` or stops
   * saying so.
   */
  async prepareMember(): Promise<void> {
    const c = this.#c;
    if (!this.creds.enrolled && c.store.pki.ca() === undefined) {
      throw new RejectedError(
        `cluster: ${this.#o.dir} belongs to a cluster without TLS; ${MIGRATE_HINT}`,
      );
    }
    const info = this.creds.info;
    const expired = info !== undefined && info.notAfter <= c.o.now();
    if (this.creds.enrolled && !expired) return;
    const why = info === undefined
      ? `no certificate in ${this.#o.dir}`
      : `this member's certificate expired at ${new Date(info.notAfter).toISOString()} ` +
        `(stopped longer than its lifetime)`;
    if (this.#reissueOwn(why)) return;
    if (this.#o.joinToken === undefined) {
      throw new RejectedError(
        `cluster: ${why}; restart with --join-token of a fresh token (berth token create on ` +
          `a member) to enroll again, keeping member id ${c.identity?.id}`,
      );
    }
    c.o.log(`cluster: ${why}; enrolling again with the join token`);
    const own = c.addresses.get(c.self);
    const addrs = [...new Set([...c.o.join, ...c.addresses.values()])].filter((a) => a !== own);
    await this.enrollThrough(addrs);
  }

  /**
   * prepareMember's re-issue of this member's expired or missing certificate (`why`); false
   * when its applied state does not list it as a member.
   */
  #reissueOwn(why: string): boolean {
    const c = this.#c;
    const id = c.identity?.id;
    const self = c.store.members().find((m) => m.id === id && m.name === c.o.node);
    const ca = c.store.pki.ca();
    if (self === undefined || ca === undefined) return false;
    const cert = this.issuer.issue(c.o.node, this.creds.publicKeyDer(), c.o.now());
    this.creds.save(cert.certPem, ca.certPem);
    this.#selfIssued = certRecord(cert, c.o.node, this.creds.publicKeyDer());
    const unused = this.#o.joinToken === undefined
      ? ""
      : "; the join token is left unused (a member of the cluster needs none)";
    c.o.log(
      `cluster: ${why}; issued itself ${cert.serial} from the cluster CA (recorded once a ` +
        `leader is elected)${unused}`,
    );
    return true;
  }

  /**
   * At bootstrap, before the transport starts: the CA (given or new), this member's
   * certificate, the first join token (written to `<dir>/join-token`, 0600), and the commands
   * that put them in the replicated state with the first member.
   */
  prepareBootstrap(clusterId: string): Command[] {
    const c = this.#c;
    const now = c.o.now();
    const ca = this.#o.ca ?? createCa({ clusterId, now: new Date(now) });
    const cert = issueCertificate({
      ca,
      publicKeySpkiDer: this.creds.publicKeyDer(),
      node: c.o.node,
      clusterId,
      now: new Date(now),
      ttlMs: this.#o.certTtlMs,
    });
    this.creds.save(cert.certPem, ca.certPem);
    const token: JoinToken = {
      id: newTokenId(randomInt),
      secret: randomSecret(),
      pin: caPin(ca.certPem),
    };
    const line = formatJoinToken(token);
    writeFileAtomic(`${this.#o.dir}/${JOIN_TOKEN_FILE}`, `${line}\n`, 0o600);
    this.bootstrapToken = line;
    return [
      { type: "pki.init", caCert: ca.certPem, caKey: ca.keyPem },
      {
        type: "cert.record",
        cert: certRecord(cert, c.o.node, this.creds.publicKeyDer()),
        nowMs: now,
      },
      {
        type: "token.create",
        id: token.id,
        hash: hashSecret(token.secret),
        ttlMs: BOOTSTRAP_TOKEN_TTL_MS,
        uses: null,
        description: "bootstrap",
        nowMs: now,
      },
    ];
  }

  /**
   * Enrolls through the members at `addresses` in turn until one answers: retried with backoff
   * while none can (unreachable, no leader), ended by a refusal (RejectedError). Without a join
   * token the join request is sent anonymously, which the cluster refuses.
   */
  async enrollThrough(addresses: string[]): Promise<void> {
    const c = this.#c;
    if (addresses.length === 0) throw new RejectedError("no member address to enroll through");
    let backoff = JOIN_BACKOFF_MS_MIN;
    let logged = false;
    for (let attempt = 1; !c.closed; attempt++) {
      const addr = addresses[(attempt - 1) % addresses.length]!;
      try {
        const got = await this.#enrollOnce(addr);
        this.creds.save(got.certPem, got.caPem);
        this.#keys?.received(got.clusterKey);
        const info = this.creds.info!;
        c.o.log(
          `cluster: enrolled through ${addr}: certificate ${info.serial} for ${info.node}, ` +
            `valid until ${new Date(info.notAfter).toISOString()}`,
        );
        return;
      } catch (e) {
        if (e instanceof RejectedError) {
          throw new RejectedError(`cannot join through ${addr}: ${errorText(e)}`);
        }
        if (!logged) {
          c.o.log(`cluster: enrolling through ${addr} failed (${errorText(e)}); retrying`);
          logged = true;
        }
        await c.pause(backoff);
        backoff = Math.min(backoff * 2, JOIN_BACKOFF_MS_MAX);
      }
    }
  }

  #enrollOnce(addr: string): Promise<Enrolled> {
    const c = this.#c;
    const token = this.#o.joinToken;
    const base = {
      addr,
      name: c.o.node,
      publicKey: this.creds.publicKeyDer(),
      address: c.address,
      timeoutMs: ENROLL_TIMEOUT_MS,
      ...(localAddress(c.o.bind.host) === undefined
        ? {}
        : { localAddress: localAddress(c.o.bind.host) }),
    };
    return token === undefined ? joinWithoutToken(base) : enroll({ ...base, token });
  }

  // ---------------------------------------------------------------- timers

  /**
   * Each tick: record a certificate this member issued itself at start once there is a leader;
   * renew this member's certificate once 2/3 of its lifetime passed.
   */
  tick(): void {
    const c = this.#c;
    const info = this.creds.info;
    if (c.node === undefined || c.closed || info === undefined) return;
    const now = c.o.now();
    if (this.#selfIssued !== undefined && c.leader !== 0 && !this.#recording) {
      if (now >= this.#recordRetryAt) this.#recordSelfIssued(this.#selfIssued);
      return;
    }
    if (this.#renewing) return;
    if (now < renewAt(info) || now < this.#renewRetryAt) return;
    this.#renewing = true;
    this.#renew().finally(() => this.#renewing = false);
  }

  async #recordSelfIssued(cert: CertRecord): Promise<void> {
    const c = this.#c;
    this.#recording = true;
    try {
      const p = await this.#proposals!.propose({
        type: "cert.record",
        cert,
        nowMs: c.o.now(),
      });
      if (!p.result.ok && !/already recorded/.test(p.result.error ?? "")) {
        throw new RejectedError(p.result.error ?? "refused");
      }
      this.#selfIssued = undefined;
      c.o.log(`cluster: recorded this member's certificate ${cert.serial}`);
    } catch (e) {
      this.#recordRetryAt = c.o.now() + RENEW_RETRY_MS;
      c.o.log(`cluster: recording this member's certificate failed (${errorText(e)}); retrying`);
    } finally {
      this.#recording = false;
    }
  }

  async #renew(): Promise<void> {
    const c = this.#c;
    try {
      const publicKey = this.creds.publicKeyDer();
      const ans = c.role === "leader"
        ? await this.issuer.renewAsLeader(c.o.node, publicKey)
        : await forward(c, {
          body: { t: "pki.renew", publicKey },
          timeoutMs: PROPOSAL_TIMEOUT_MS,
          what: "renew the certificate with",
        }) as { certPem?: unknown };
      const pem = ans?.certPem;
      if (typeof pem !== "string" || !verifyIssued(pem, this.creds.caPem ?? "")) {
        throw new TimeoutError("malformed renewal answer");
      }
      if (certInfo(pem).node !== c.o.node) throw new TimeoutError("renewal for another name");
      this.creds.save(pem);
      this.#renewFailLogged = false;
      const info = this.creds.info!;
      c.o.log(
        `cluster: renewed this member's certificate: ${info.serial}, valid until ` +
          new Date(info.notAfter).toISOString(),
      );
    } catch (e) {
      this.#renewRetryAt = c.o.now() + RENEW_RETRY_MS;
      if (!this.#renewFailLogged) {
        c.o.log(`cluster: renewing this member's certificate failed (${errorText(e)}); retrying`);
        this.#renewFailLogged = true;
      }
    }
  }

  /** Stops the timers (the cluster closes). */
  close(): void {
    this.peers.close();
  }
}

function localAddress(host: string): string | undefined {
  return host === "0.0.0.0" || host === "::" ? undefined : host;
}
