/**
 * The cluster CA's requests, with mutual TLS on (_security.ts): what a joiner or a member asks
 * of the CA through any member, answered from the CA in the replicated state.
 *
 * - `pki.ca`: the CA certificate (public; a joiner checks it against its token's pin before it
 *   sends the secret).
 * - `pki.enroll`: the leader checks the token, issues a certificate for the joiner's name and
 *   proposes `token.use`, which spends the token and records the certificate in one apply. A
 *   member receiving an enrollment forwards it to the leader only when its own applied state
 *   accepts the token (a flood of bad tokens stays with it); refusals are logged by the member
 *   the joiner asked (at most once a while per remote host), naming the token by id. Once the
 *   leader accepted the token, the member the joiner asked adds the cluster key to its answer
 *   (_cluster_key.ts), on that pinned connection.
 * - `pki.renew` (leader only): a certificate for the name in the caller's own certificate,
 *   recorded by `cert.record`.
 *
 * @module
 */
import { hashSecret, issueCertificate, publicKeyHash } from "../pki/mod.ts";
import { errorText } from "../lib/error_text.ts";
import type { CertRecord } from "../store/mod.ts";
import type { ClusterCore } from "./_core.ts";
import type { Enrolled } from "./enroll.ts";
import { NoLeaderError, NotLeaderError, RejectedError } from "./errors.ts";
import { PROPOSAL_TIMEOUT_MS, type Proposals } from "./_proposals.ts";
import { forward } from "./_requests.ts";
import type { Peer } from "./transport.ts";
import { limitedLog } from "./_transport_shared.ts";
import type { KeyShare } from "./_cluster_key.ts";

/** An enrollment request: a join token `<id>.<secret>`, the joiner's name and public key. */
export interface EnrollRequest {
  token: string;
  name: string;
  /** SubjectPublicKeyInfo DER. */
  publicKey: Uint8Array;
}

export class Issuer {
  readonly #c: ClusterCore;
  readonly #certTtlMs: number;
  #proposals: Proposals | undefined;
  #keys: KeyShare | undefined;
  readonly #logLimited: (key: string, line: string) => void;

  /** `certTtlMs`: the lifetime of the certificates issued here (--cert-ttl). */
  constructor(core: ClusterCore, certTtlMs: number) {
    this.#c = core;
    this.#certTtlMs = certTtlMs;
    this.#logLimited = limitedLog(core.o.log, core.o.now);
  }

  /** Wires the units made after this one. */
  attach(proposals: Proposals, keys: KeyShare): void {
    this.#proposals = proposals;
    this.#keys = keys;
  }

  /** `pki.ca`: the CA certificate (public). */
  caAnswer(): { caPem: string } {
    const ca = this.#c.store.pki.ca();
    if (ca === undefined) throw new NoLeaderError("this member has no cluster CA yet");
    return { caPem: ca.certPem };
  }

  /**
   * `pki.enroll` from a joiner (anonymous) or forwarded by a member: forwarded to the leader, or
   * handled here. A refusal is logged by the member the joiner asked.
   */
  async enrollRequest(from: Peer, r: EnrollRequest): Promise<Enrolled> {
    const c = this.#c;
    const direct = from.cert === null;
    try {
      let ans: Enrolled;
      if (c.role !== "leader") {
        // Checked on this replica first (the leader decides for real): a flood of bad tokens at
        // a follower is not passed on to the leader.
        const problem = this.#enrollProblem(r, c.o.now());
        if (problem !== undefined) throw new RejectedError(problem);
        const fwd = await forward(c, {
          body: { t: "pki.enroll", ...r },
          timeoutMs: PROPOSAL_TIMEOUT_MS,
          what: "enroll with",
        }) as Enrolled;
        ans = { certPem: fwd.certPem, caPem: fwd.caPem };
      } else {
        ans = await this.#enrollAsLeader(r);
      }
      // The leader accepted the token (the answer exists only then): the joiner, on this pinned
      // connection, also gets the cluster key (_cluster_key.ts).
      const clusterKey = direct ? this.#keys?.forJoiner() : undefined;
      return clusterKey === undefined ? ans : { ...ans, clusterKey };
    } catch (e) {
      if (direct && e instanceof RejectedError) {
        const who = from.remoteHost ?? from.address;
        // One line per host and kind of refusal (the token's id left out, a flood varies it):
        // each refused joiner is told on this side too, and a flood stays a few lines.
        const kind = errorText(e).replace(/join token \S+?[: ]/, "join token ");
        this.#logLimited(
          `enroll:${who}:${kind}`,
          `cluster: refused to enroll ${r.name} (${who}): ${errorText(e)}`,
        );
      }
      throw e;
    }
  }

  /** Why this replica's applied state refuses the enrollment `r` at `now`, or undefined. */
  #enrollProblem(r: EnrollRequest, now: number): string | undefined {
    const { id, hash } = tokenParts(r.token);
    const pki = this.#c.store.pki;
    return pki.tokenProblem(id, hash, now) ??
      pki.enrollProblem(r.name, publicKeyHash(r.publicKey), now);
  }

  async #enrollAsLeader(r: EnrollRequest): Promise<Enrolled> {
    const c = this.#c;
    const ca = c.store.pki.ca();
    if (ca === undefined) throw new RejectedError("this cluster has no CA");
    const { id, hash } = tokenParts(r.token);
    const now = c.o.now();
    const problem = this.#enrollProblem(r, now);
    if (problem !== undefined) throw new RejectedError(problem);
    const cert = this.issue(r.name, r.publicKey, now);
    const p = await this.#proposals!.propose({
      type: "token.use",
      id,
      hash,
      cert: certRecord(cert, r.name, r.publicKey),
      nowMs: now,
    });
    if (!p.result.ok) throw new RejectedError(p.result.error ?? "enrollment refused");
    c.o.log(`cluster: enrolled ${r.name} with join token ${id} (certificate ${cert.serial})`);
    return { certPem: cert.certPem, caPem: ca.certPem };
  }

  /**
   * `pki.renew` from a member, answered by the leader only (a member renews through the leader
   * it knows and retries): a certificate for the name in the caller's own certificate. A name in
   * the request is refused: no member may ask for another's name, and the leader could not tell
   * a forwarder from a member asking for itself.
   */
  async renewRequest(
    from: Peer,
    r: { publicKey: Uint8Array; node?: string },
  ): Promise<{ certPem: string }> {
    const node = from.cert?.node;
    if (node === undefined) throw new RejectedError("renewal needs the caller's certificate");
    if (r.node !== undefined) {
      throw new RejectedError(`a renewal is for the caller's own name (${node}), not ${r.node}`);
    }
    if (this.#c.role !== "leader") {
      throw new NotLeaderError("not the leader: renew the certificate with the leader");
    }
    return await this.renewAsLeader(node, r.publicKey);
  }

  /** On the leader: a new certificate for `node`'s `publicKey`, recorded before it is answered. */
  async renewAsLeader(node: string, publicKey: Uint8Array): Promise<{ certPem: string }> {
    const now = this.#c.o.now();
    const cert = this.issue(node, publicKey, now);
    const p = await this.#proposals!.propose({
      type: "cert.record",
      cert: certRecord(cert, node, publicKey),
      nowMs: now,
    });
    if (!p.result.ok) throw new RejectedError(p.result.error ?? "renewal refused");
    return { certPem: cert.certPem };
  }

  /** A certificate for `node`'s `publicKey` from the CA in the store (not recorded yet). */
  issue(
    node: string,
    publicKey: Uint8Array,
    now: number,
  ): { certPem: string; serial: string; notAfter: number } {
    const c = this.#c;
    const ca = c.store.pki.ca();
    const clusterId = c.identity?.clusterId;
    if (ca === undefined || clusterId === undefined) throw new NoLeaderError("no cluster CA yet");
    try {
      return issueCertificate({
        ca,
        publicKeySpkiDer: publicKey,
        node,
        clusterId,
        now: new Date(now),
        ttlMs: this.#certTtlMs,
      });
    } catch (e) {
      throw new RejectedError(`cannot issue a certificate for ${node}: ${errorText(e)}`);
    }
  }
}

/** What the store records of a certificate issued to `node` for `publicKey` (SPKI DER). */
export function certRecord(
  cert: { serial: string; notAfter: number },
  node: string,
  publicKey: Uint8Array,
): CertRecord {
  return {
    serial: cert.serial.toLowerCase(),
    node,
    notAfter: cert.notAfter,
    key: publicKeyHash(publicKey),
  };
}

/** The id and the secret's hash of a join token `<id>.<secret>` (checked by parseRequest). */
function tokenParts(token: string): { id: string; hash: string } {
  const dot = token.indexOf(".");
  return { id: token.slice(0, dot), hash: hashSecret(token.slice(dot + 1)) };
}
