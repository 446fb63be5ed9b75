/**
 * What arrives from other members, dispatched to the unit that handles it: one-way messages
 * (raft messages) and requests (propose, join, remove, transfer, snapshot chunks). Everything is
 * checked here first; a malformed raft message is dropped with a log line, a malformed request
 * refused with a RejectedError, and a request from another cluster or from a non-member refused.
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import { type Message, validateMessage } from "../../raft/mod.ts";
import type { ClusterCore } from "./_core.ts";
import { BusyError, ClosedError, NotLeaderError, RejectedError } from "./errors.ts";
import type { Join } from "./_join.ts";
import type { Membership } from "./_membership.ts";
import type { Proposals } from "./_proposals.ts";
import { parseRequest } from "./_requests.ts";
import type { SnapshotShipping } from "./_snapshot_shipping.ts";
import type { SessionTimers } from "./_session_timers.ts";
import { memberStatuses } from "./_status.ts";
import type { Hello, Peer } from "./transport.ts";
import type { Security } from "./_security.ts";
import type { KeyShare } from "./_cluster_key.ts";
import type { RemovedNotices } from "./_removed_notice.ts";
import { limitedLog } from "./_transport_shared.ts";

export interface Units {
  proposals: Proposals;
  join: Join;
  membership: Membership;
  shipping: SnapshotShipping;
  sessions: SessionTimers;
  /** With TLS: enrollment, renewal, the CA (absent: plain TCP). */
  security: Security | undefined;
  notices: RemovedNotices;
  keys: KeyShare;
  /** Who answers `query` requests (RaftCluster.answerQueries); undefined: none yet. */
  queries: () => QueryHandler | undefined;
}

/** Answers another member's question (RaftCluster.ask) with plain data; throws one line. */
export type QueryHandler = (q: Record<string, unknown>) => Promise<unknown>;

/** Requests a node outside the cluster may make on plain TCP. */
const OUTSIDER_REQUESTS: ReadonlySet<unknown> = new Set(["join", "pki.ca", "pki.enroll"]);
/** Requests a TLS peer without a certificate may make: enrollment. */
const ANONYMOUS_REQUESTS: ReadonlySet<unknown> = new Set(["pki.ca", "pki.enroll"]);
/** Requests a TLS peer with a certificate that is no member here may make. */
const NON_MEMBER_REQUESTS: ReadonlySet<unknown> = new Set(["join", "propose"]);

export class Rpc {
  readonly #c: ClusterCore;
  readonly #u: Units;
  readonly #logLimited: (key: string, line: string) => void;

  constructor(core: ClusterCore, units: Units) {
    this.#c = core;
    this.#u = units;
    this.#logLimited = limitedLog(core.o.log, core.o.now);
  }

  /** A one-way message from another member. */
  onMessage(from: Hello, body: unknown): void {
    const c = this.#c;
    if (c.node === undefined || c.closed) return;
    if (typeof body !== "object" || body === null) return;
    const b = body as Record<string, unknown>;
    if (from.nodeId > 0 && from.clusterId === c.identity?.clusterId) {
      if (b.t === "removed") {
        // A member tells this one it was removed; only a member of this replica's own
        // membership is listened to.
        if (b.id === c.self && c.members.isMember(from.nodeId)) c.removed();
        return;
      }
      if (c.members.wasRemoved(from.nodeId)) {
        this.#u.notices.tell(from.nodeId, from);
        return;
      }
      c.heard.set(from.nodeId, c.o.now());
      if (!c.addresses.has(from.nodeId)) c.addresses.set(from.nodeId, from.address);
    }
    if (b.t !== "raft") return;
    let m: Message;
    try {
      m = validateMessage(b.m);
    } catch (e) {
      c.o.log(
        `cluster: dropped a malformed raft message from ${from.address}: ${errorText(e)}`,
      );
      return;
    }
    if (m.from !== from.nodeId || m.to !== c.self) {
      c.o.log(
        `cluster: dropped a raft message from ${from.address} with from/to ${m.from}/${m.to}`,
      );
      return;
    }
    if (m.type === "MsgSnap") {
      const data = this.#u.shipping.take(from, b.snap, m);
      if (data === undefined || m.snapshot === undefined) return;
      m = { ...m, snapshot: { metadata: m.snapshot.metadata, data } };
    }
    c.step(m);
  }

  #security(): Security {
    const s = this.#u.security;
    if (s === undefined) throw new RejectedError("this cluster runs without TLS (--tls off)");
    return s;
  }

  /** Whether `from` is a member here: with a certificate, the member of that id and name. */
  #isMember(from: Peer): boolean {
    const m = this.#c.members;
    return from.cert == null
      ? m.isMember(from.nodeId)
      : m.isMemberNamed(from.nodeId, from.cert.node);
  }

  /**
   * Why a request of kind `t` from `from` is refused before it is looked at, or undefined:
   * - without a certificate (TLS): only the enrollment pair;
   * - with a revoked certificate (its member was removed — from the moment this replica applied
   *   the removal, before its connections are dropped): nothing;
   * - with a certificate but no member of that name and id here (never joined, removed, or a
   *   member whose joining this replica has not applied yet): only a join (as the node the
   *   certificate names, checked below), a proposal (answered busy or removed), and
   *   snapshot chunks from the leader raft follows when this replica has not applied its id;
   * - on plain TCP, a node that has not joined (id 0): join and the enrollment pair.
   */
  #refusal(from: Peer, t: unknown): string | undefined {
    const c = this.#c;
    if (from.cert === null) {
      return ANONYMOUS_REQUESTS.has(t) ? undefined : "a node without a certificate may only enroll";
    }
    if (from.cert !== undefined) {
      if (c.store.pki.revoked(from.cert.serial)) {
        return `certificate ${from.cert.serial} of ${from.cert.node} was revoked (removed)`;
      }
      if (this.#isMember(from) || NON_MEMBER_REQUESTS.has(t)) return undefined;
      // This replica's leader whose joining it has not applied yet (a new member, or this one
      // catching up from nothing) ships it a snapshot.
      const unapplied = from.nodeId > c.members.idMax;
      if (t === "snap.chunk" && unapplied && from.nodeId === c.leader) return undefined;
      return `${from.cert.node} is not a member: join the cluster first`;
    }
    const outsider = from.clusterId === "" || from.nodeId === 0;
    return outsider && !OUTSIDER_REQUESTS.has(t) ? "join the cluster first" : undefined;
  }

  /**
   * A request from another member (or a joining node); its answer or a coded error. Who may
   * ask what: `#refusal` (a refusal is one line, logged at most once a while per remote host).
   */
  async onRequest(from: Peer, body: unknown): Promise<unknown> {
    const c = this.#c;
    if (c.closed) throw new ClosedError("member is shutting down");
    const cluster = c.identity?.clusterId;
    const t = (body as { t?: unknown } | null)?.t;
    const refusal = this.#refusal(from, t);
    if (refusal !== undefined) {
      const kind = typeof t === "string" && /^[a-z.]{1,20}$/.test(t) ? t : "malformed";
      const who = from.remoteHost ?? from.address;
      this.#logLimited(
        `refused:${who}`,
        `cluster: refused a ${kind} request from ${from.address} (${who}): ${refusal}`,
      );
      throw new RejectedError(refusal);
    }
    if (cluster !== undefined && from.clusterId !== "" && from.clusterId !== cluster) {
      throw new RejectedError("foreign cluster");
    }
    const r = parseRequest(body);
    switch (r.t) {
      case "propose": {
        if (!this.#isMember(from)) {
          // A removed member is refused for good; an id not handed out yet here may be a member
          // whose joining this member has not applied yet.
          if (c.members.wasRemoved(from.nodeId)) {
            throw new RejectedError("proposals are taken from members only (removed)");
          }
          throw new BusyError("proposals are taken from members only");
        }
        return await this.#u.proposals.proposeAsLeader(r.id, r.cmd);
      }
      case "join":
        // With a certificate, a non-member (whatever id its hello claims) joins only as the
        // node its certificate names; a member may pass on a joiner's request (_join.ts).
        if (from.cert != null && from.cert.node !== r.name && !this.#isMember(from)) {
          this.#logLimited(
            `join:${from.remoteHost ?? from.address}`,
            `cluster: refused the join of ${r.name} (${from.address}): its certificate is ` +
              `for ${from.cert.node}`,
          );
          throw new RejectedError(`the certificate is for ${from.cert.node}, not ${r.name}`);
        }
        return await this.#u.join.handle(r);
      case "pki.ca":
        return this.#security().issuer.caAnswer();
      case "pki.enroll":
        return await this.#security().issuer.enrollRequest(from, r);
      case "clusterkey.get":
        // Members only, whatever the transport (on plain TCP #refusal lets any id > 0 by).
        if (!this.#isMember(from)) throw new RejectedError("the cluster key is for members only");
        // On plain TCP the member id is only claimed: the key goes there only when the cluster
        // says so (--tls off --dev).
        if (from.cert == null && !this.#u.keys.inClear) {
          throw new RejectedError(
            "the cluster key is given only over mutual TLS (this member is not --tls off --dev)",
          );
        }
        return this.#u.keys.answer();
      case "pki.renew":
        if (from.cert == null) throw new RejectedError("renewal needs a member certificate");
        return await this.#security().issuer.renewRequest(from, r);
      case "remove":
        await this.#u.membership.remove(r.id);
        return { ok: true };
      case "transfer":
        await this.#u.membership.transfer(r.to);
        return { ok: true };
      case "members":
        if (c.role !== "leader") throw new NotLeaderError("not the leader");
        return memberStatuses(c);
      case "session.renew":
        // Leadership confirmed first (RaftCluster.renewSession).
        await this.#u.proposals.leaderBarrier();
        return this.#u.sessions.renew(r.id) ?? null;
      case "snap.chunk":
        return await this.#u.shipping.onChunk(from, r.body);
      case "query": {
        // Members only (over mutual TLS the member its certificate names); the answer is this
        // agent's own view, and the asking member decides what its caller may see of it.
        if (!this.#isMember(from)) throw new RejectedError("queries are answered for members only");
        const answer = this.#u.queries();
        if (answer === undefined) throw new RejectedError("this member answers no queries yet");
        return await answer(r.q);
      }
    }
  }
}
