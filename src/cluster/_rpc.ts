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
import { REMOVED_NOTICE_MS, type Security } from "./_security.ts";

/** Removed members remembered for rate-limiting notices. */
const NOTICED_MAX = 1024;

export interface Units {
  proposals: Proposals;
  join: Join;
  membership: Membership;
  shipping: SnapshotShipping;
  sessions: SessionTimers;
  /** With TLS: enrollment, renewal, the CA (absent: plain TCP). */
  security: Security | undefined;
}

/** Requests a node outside the cluster may make: join, and with TLS the enrollment pair. */
const OUTSIDER_REQUESTS: ReadonlySet<unknown> = new Set(["join", "pki.ca", "pki.enroll"]);

export class Rpc {
  readonly #c: ClusterCore;
  readonly #u: Units;
  /** Removed member id → when it was last told so. */
  readonly #noticed = new Map<number, number>();

  constructor(core: ClusterCore, units: Units) {
    this.#c = core;
    this.#u = units;
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
        this.#noticeRemoved(from);
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

  /**
   * Tells a removed member that sends raft messages (restarted with its old data) that it was
   * removed, at most once per REMOVED_NOTICE_MS: it stops instead of serving stale data.
   */
  #noticeRemoved(from: Hello): void {
    const now = this.#c.o.now();
    const last = this.#noticed.get(from.nodeId);
    if (last !== undefined && now - last < REMOVED_NOTICE_MS) return;
    if (this.#noticed.size >= NOTICED_MAX) this.#noticed.clear();
    this.#noticed.set(from.nodeId, now);
    this.#c.transport.send(from.address, { t: "removed", id: from.nodeId });
  }

  /**
   * A request from another member (or a joining node); its answer or a coded error. With TLS
   * (`from.cert` present) a peer that is no member yet may only join (as the node its
   * certificate names) and enroll; a peer without a certificate only enroll (the transport
   * closes it on anything else).
   */
  async onRequest(from: Peer, body: unknown): Promise<unknown> {
    const c = this.#c;
    if (c.closed) throw new ClosedError("member is shutting down");
    const cluster = c.identity?.clusterId;
    const t = (body as { t?: unknown } | null)?.t;
    // With TLS the peer's id is vouched for by its certificate: an id that is no member here is
    // an outsider too (removed), unless it is newer than this replica knows (a join it has not
    // applied yet).
    const appliedHere = from.nodeId <= c.members.idMax;
    const outsider = from.clusterId === "" || from.nodeId === 0 ||
      (from.cert !== undefined && !c.members.isMember(from.nodeId) && appliedHere);
    if (outsider && !OUTSIDER_REQUESTS.has(t)) throw new RejectedError("join the cluster first");
    if (from.cert === null && t !== "pki.ca" && t !== "pki.enroll") {
      throw new RejectedError("a node without a certificate may only enroll");
    }
    if (cluster !== undefined && from.clusterId !== "" && from.clusterId !== cluster) {
      throw new RejectedError("foreign cluster");
    }
    const r = parseRequest(body);
    switch (r.t) {
      case "propose": {
        if (!c.members.isMember(from.nodeId)) {
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
        if (from.cert != null && from.nodeId === 0 && from.cert.node !== r.name) {
          c.o.log(
            `cluster: refused the join of ${r.name} (${from.address}): its certificate is ` +
              `for ${from.cert.node}`,
          );
          throw new RejectedError(`the certificate is for ${from.cert.node}, not ${r.name}`);
        }
        return await this.#u.join.handle(r);
      case "pki.ca":
        return this.#security().caAnswer();
      case "pki.enroll":
        return await this.#security().enrollRequest(from, r);
      case "pki.renew":
        if (from.cert == null) throw new RejectedError("renewal needs a member certificate");
        return await this.#security().renewRequest(from, r);
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
    }
  }
}
