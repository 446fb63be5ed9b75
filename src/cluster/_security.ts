/**
 * (Over 500 lines: one unit, the cluster's certificate life cycle, of which every part reads the
 * same credentials and store rows.)
 *
 * Cluster security at run time (mutual TLS on, `RaftClusterOptions.tls`): this member's
 * credentials and who it lets in.
 *
 * - **Credentials** (credentials.ts): made at bootstrap (the CA, from `--ca-cert/--ca-key` or new;
 *   this member's certificate; the first join token, written to `<dir>/join-token`), got by
 *   enrollment (enroll.ts) with a join token before joining, renewed through the leader once 2/3
 *   of their lifetime passed, and swapped into the transport (`credentials()` is asked for every
 *   new connection).
 * - **verifyPeer**, the transport's check after the handshake: the certificate is of our cluster
 *   and its serial is recorded in the store as issued and not revoked (an allow-list: a
 *   certificate made with a copy of the CA key is refused; a replica that has not yet applied a
 *   fresh enrollment or renewal refuses it too, until the peer's redial or join retry); a
 *   member's hello id maps to the member of the certificate's name. A peer
 *   with a valid certificate that is no member yet may only make join requests (_rpc.ts).
 * - **The leader's side**: `pki.enroll` (checks the token, issues a certificate for the joiner's
 *   name and proposes `token.use` — which spends the token and records the certificate in one
 *   apply), `pki.renew` (leader only: a certificate for the name in the caller's certificate,
 *   `cert.record`). A member receiving an enrollment forwards it to the leader only when its own
 *   applied state accepts the token (a flood of bad tokens stays with it); refusals are logged by
 *   the member the joiner asked (at most once a while per remote host), naming the token by id.
 *   Once the leader accepted the token, the member the joiner asked adds the cluster key to its
 *   answer (_cluster_key.ts), on that pinned connection.
 * - **A restart after a stop longer than --cert-ttl** (the whole cluster may have been down): a
 *   member issues itself a new certificate from the CA in its store and records it once a leader
 *   is elected; until then peers accept an unrecorded certificate of a member all of whose
 *   recorded certificates expired (the one exception to the allow-list, logged once per serial).
 * - **Revocation**: a conf change removing a member revokes its certificates in the store (the
 *   deny list, pki_state.ts); here every member then drops the connections of that name.
 *
 * @module
 */
import { createHash, randomInt } from "node:crypto";
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
import { NoLeaderError, NotLeaderError, RejectedError, TimeoutError } from "./errors.ts";
import { PROPOSAL_TIMEOUT_MS, type Proposals } from "./_proposals.ts";
import { forward } from "./_requests.ts";
import type { Hello, Peer, TransportTls } from "./transport.ts";
import { limitedLog } from "./_transport_shared.ts";
import type { RemovedNotices } from "./_removed_notice.ts";
import type { ClusterTlsOptions } from "./types.ts";
import type { KeyShare } from "./_cluster_key.ts";
import { JOIN_BACKOFF_MS_MAX, JOIN_BACKOFF_MS_MIN } from "./_join.ts";

/** How long a removed member's open connections stay (its last answers get through). */
export const DROP_GRACE_MS = 1000;
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
  #proposals: Proposals | undefined;
  #renewing = false;
  #renewRetryAt = 0;
  #renewFailLogged = false;
  /** A certificate this member issued itself at start (H2 below), until `cert.record` applied. */
  #selfIssued: CertRecord | undefined;
  #recordRetryAt = 0;
  #recording = false;
  /** Unrecorded serials accepted under the restart exception (logged once each). */
  readonly #excepted = new Set<string>();
  /** Member ids of the applied membership, to see who a change removed. */
  #memberIds = new Map<number, string>();
  /** Timers of pending dropPeer calls. */
  readonly #drops = new Set<ReturnType<typeof setTimeout>>();
  #notices: RemovedNotices | undefined;
  #keys: KeyShare | undefined;
  readonly #logLimited: (key: string, line: string) => void;
  /** The join token made at bootstrap (printed once by the agent). */
  bootstrapToken: string | undefined;

  constructor(core: ClusterCore, o: ClusterTlsOptions) {
    this.#c = core;
    this.#o = o;
    this.creds = new NodeCredentials(o.dir);
    this.#logLimited = limitedLog(core.o.log, core.o.now);
  }

  /** Wires the units made after this one. */
  attach(proposals: Proposals, notices: RemovedNotices, keys: KeyShare): void {
    this.#proposals = proposals;
    this.#notices = notices;
    this.#keys = keys;
  }

  /** What the transport is given. */
  transportTls(): TransportTls {
    return {
      credentials: () => this.creds.current(),
      verifyPeer: (p) => this.verifyPeer(p),
    };
  }

  /** Our cluster's id: the identity's, or before joining, our certificate's. */
  clusterId(): string | undefined {
    return this.#c.identity?.clusterId ?? this.creds.info?.clusterId;
  }

  /** The transport's check of a peer after the handshake (module comment). */
  verifyPeer(
    p: { hello: Hello & { remoteHost?: string }; cert: CertInfo | null; inbound: boolean },
  ): string | null {
    const { hello, cert } = p;
    if (cert === null) return p.inbound ? null : "the peer presented no certificate";
    const ours = this.clusterId();
    if (ours !== undefined && cert.clusterId !== ours) {
      return `certificate of cluster ${cert.clusterId}, not ${ours}`;
    }
    const store = this.#c.store;
    const removed = hello.nodeId > 0 && this.#c.members.wasRemoved(hello.nodeId);
    // Before the first state arrived (a joiner) there is no record to check against.
    const status = store.pki.ca() === undefined ? "valid" : store.pki.certStatus(cert.serial);
    if (removed || status === "revoked") {
      // Dialed by us: only the notice below goes that way (no raft traffic to a non-member).
      if (!p.inbound) return null;
      if (hello.nodeId > 0) this.#notices?.tell(hello.nodeId, hello);
      return removed
        ? `member id ${hello.nodeId} (${cert.node}) was removed`
        : `certificate ${cert.serial} of ${cert.node} was revoked (the member was removed)`;
    }
    if (status === "unknown" && !this.#restartException(cert)) {
      // Not issued by this cluster's leader — or issued by an entry this replica has not
      // applied yet (a fresh enrollment or renewal): the peer's redial or join retry gets in.
      return `certificate ${cert.serial} of ${cert.node} is not recorded as issued (yet)`;
    }
    if (hello.nodeId > 0) {
      const members = store.members();
      const claimed = members.find((m) => m.id === hello.nodeId);
      if (claimed !== undefined && claimed.name !== cert.node) {
        return `hello claims member id ${hello.nodeId} (${claimed.name}) with a certificate ` +
          `for ${cert.node}`;
      }
      const other = members.find((m) => m.name === cert.node && m.id !== hello.nodeId);
      if (claimed === undefined && other !== undefined) {
        return `certificate for ${cert.node} (member id ${other.id}) used by id ${hello.nodeId}`;
      }
    }
    return null;
  }

  /**
   * The one exception to the allow-list: a member of the cluster all of whose recorded
   * certificates expired (the cluster was stopped longer than --cert-ttl) presents one it issued
   * itself at start from the CA in its store (prepareMember); it proposes `cert.record` for it
   * once a leader is elected, which needs these connections first. Logged once per serial.
   */
  #restartException(cert: CertInfo): boolean {
    const c = this.#c;
    if (!c.store.members().some((m) => m.name === cert.node)) return false;
    const now = c.o.now();
    if (c.store.pki.certsOf(cert.node).some((r) => !r.revoked && r.notAfter > now)) return false;
    if (!this.#excepted.has(cert.serial)) {
      if (this.#excepted.size >= 1024) this.#excepted.clear();
      this.#excepted.add(cert.serial);
      c.o.log(
        `cluster: accepted certificate ${cert.serial} of ${cert.node}, not recorded yet: every ` +
          `recorded certificate of that member expired (a restart after a long stop)`,
      );
    }
    return true;
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
    if (self === undefined || c.store.pki.ca() === undefined) return false;
    const cert = this.#issue(c.o.node, this.creds.publicKeyDer(), c.o.now());
    this.creds.save(cert.certPem, c.store.pki.ca()!.certPem);
    this.#selfIssued = record(cert, c.o.node, this.creds.publicKeyDer());
    c.o.log(
      `cluster: ${why}; issued itself ${cert.serial} from the cluster CA (recorded once a ` +
        `leader is elected)`,
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
        cert: record(cert, c.o.node, this.creds.publicKeyDer()),
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

  // ---------------------------------------------------------------- requests

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
  async enrollRequest(
    from: Peer,
    r: { token: string; name: string; publicKey: Uint8Array },
  ): Promise<Enrolled> {
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
  #enrollProblem(
    r: { token: string; name: string; publicKey: Uint8Array },
    now: number,
  ): string | undefined {
    const { id, hash } = tokenParts(r.token);
    const pki = this.#c.store.pki;
    return pki.tokenProblem(id, hash, now) ??
      pki.enrollProblem(r.name, keyHash(r.publicKey), now);
  }

  async #enrollAsLeader(r: { token: string; name: string; publicKey: Uint8Array }) {
    const c = this.#c;
    const ca = c.store.pki.ca();
    if (ca === undefined) throw new RejectedError("this cluster has no CA");
    const { id, hash } = tokenParts(r.token);
    const now = c.o.now();
    const problem = this.#enrollProblem(r, now);
    if (problem !== undefined) throw new RejectedError(problem);
    const cert = this.#issue(r.name, r.publicKey, now);
    const p = await this.#proposals!.propose({
      type: "token.use",
      id,
      hash,
      cert: record(cert, r.name, r.publicKey),
      nowMs: now,
    });
    if (!p.result.ok) throw new RejectedError(p.result.error ?? "enrollment refused");
    c.o.log(`cluster: enrolled ${r.name} with join token ${id} (certificate ${cert.serial})`);
    return { certPem: cert.certPem, caPem: ca.certPem };
  }

  /**
   * `pki.renew` from a member, answered by the leader only (a member renews through the leader
   * it knows and retries after RENEW_RETRY_MS): a certificate for the name in the caller's own
   * certificate. A name in the request is refused: no member may ask for another's name, and
   * the leader could not tell a forwarder from a member asking for itself.
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
    return await this.#renewAsLeader(node, r.publicKey);
  }

  async #renewAsLeader(node: string, publicKey: Uint8Array): Promise<{ certPem: string }> {
    const now = this.#c.o.now();
    const cert = this.#issue(node, publicKey, now);
    const p = await this.#proposals!.propose({
      type: "cert.record",
      cert: record(cert, node, publicKey),
      nowMs: now,
    });
    if (!p.result.ok) throw new RejectedError(p.result.error ?? "renewal refused");
    return { certPem: cert.certPem };
  }

  #issue(node: string, publicKey: Uint8Array, now: number) {
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
        ttlMs: this.#o.certTtlMs,
      });
    } catch (e) {
      throw new RejectedError(`cannot issue a certificate for ${node}: ${errorText(e)}`);
    }
  }

  // ---------------------------------------------------------------- timers and revocation

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
        ? await this.#renewAsLeader(c.o.node, publicKey)
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

  /**
   * On every applied membership change: drop the connections of members it removed, after
   * DROP_GRACE_MS (the answer to a member's own `berth leave` still reaches it). Meanwhile
   * nothing gets through them: its certificate being revoked in the same apply, every request
   * on them is refused (_rpc.ts), new connections too, and raft sends it nothing.
   */
  watchRemovals(): void {
    const c = this.#c;
    const snapshot = () => new Map(c.store.members().map((m) => [m.id, m.name]));
    this.#memberIds = snapshot();
    c.store.subscribe((ch) => {
      if (!ch.tables.has("members")) return;
      const now = snapshot();
      for (const [id, name] of this.#memberIds) {
        if (now.has(id) || [...now.values()].includes(name)) continue;
        const t = setTimeout(() => {
          this.#drops.delete(t);
          if (!c.closed) c.transport.dropPeer(name);
        }, DROP_GRACE_MS);
        this.#drops.add(t);
      }
      this.#memberIds = now;
    });
  }

  /** Stops the timers (the cluster closes). */
  close(): void {
    for (const t of this.#drops) clearTimeout(t);
    this.#drops.clear();
  }
}

/** The id and the secret's hash of a join token `<id>.<secret>` (checked by parseRequest). */
function tokenParts(token: string): { id: string; hash: string } {
  const dot = token.indexOf(".");
  return { id: token.slice(0, dot), hash: hashSecret(token.slice(dot + 1)) };
}

function record(
  cert: { serial: string; notAfter: number },
  node: string,
  publicKey: Uint8Array,
): CertRecord {
  return {
    serial: cert.serial.toLowerCase(),
    node,
    notAfter: cert.notAfter,
    key: keyHash(publicKey),
  };
}

/** What the store keeps of a public key (SPKI DER): its sha256, lower-case hex. */
function keyHash(publicKey: Uint8Array): string {
  return createHash("sha256").update(publicKey).digest("hex");
}

function localAddress(host: string): string | undefined {
  return host === "0.0.0.0" || host === "::" ? undefined : host;
}
