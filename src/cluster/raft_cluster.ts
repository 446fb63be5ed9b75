/**
 * The Raft cluster behind `propose()`: drives a `raft/` RawNode for real, with a ticker, the
 * durable log in SQLite (raft_storage.ts), the TCP transport (transport.ts), and the store as the
 * state machine. This file only builds and wires the units; each concern lives in one of them:
 *
 * | unit                   | what it answers                                                 |
 * |------------------------|-----------------------------------------------------------------|
 * | _core.ts               | the ready loop (post the write → send what may go early → on the |
 * |                        | ack: send the rest → apply in slices → advance), role, leader,  |
 * |                        | futures on that state (_waiters.ts)                             |
 * | raft_storage.ts        | the durable log as raft reads it (shape in memory, entry_cache) |
 * | log_writer.ts          | who writes raft.db: inline, or the log worker (log_worker.ts,   |
 * |                        | log_db.ts), which also checkpoints the store's WAL              |
 * | _apply.ts              | committed entries → store commands (proposals, conf changes)    |
 * | _member_view.ts        | the applied membership in memory (removed ids, addresses)       |
 * | _proposals.ts          | propose() from any member (forwarding, retries), readBarrier()  |
 * | _join.ts               | bootstrap, joining, the leader handing out member ids           |
 * | _membership.ts         | remove, leave, leadership transfer, promotion of learners       |
 * | _snapshot_shipping.ts  | snapshots sent to and received from lagging members             |
 * | snapshot_stream.ts     | a snapshot file streamed in chunks under flow control           |
 * | snapshot_files.ts      | snapshot files on disk (kept, synced, pruned) and their refs    |
 * | log_budget.ts          | when to snapshot and how much log to keep, by entries and bytes |
 * | _liveness.ts           | nodes marked down/alive from Raft contact, removed members'     |
 * |                        | instances deregistered (on the leader)                          |
 * | _session_timers.ts     | session TTLs and check-bound sessions ended (on the leader)     |
 * | _status.ts             | status() and members()                                          |
 * | _security.ts           | with TLS: this member's credentials: made at bootstrap, got by  |
 * |                        | enrollment, renewed, self-issued after a long stop              |
 * | _peer_check.ts         | with TLS: verifyPeer (who gets in), removed members dropped     |
 * | _issuer.ts             | with TLS: the CA's requests (pki.ca, pki.enroll, pki.renew)     |
 * | _cluster_key.ts        | the cluster key: named at bootstrap, handed to joiners, fetched |
 * |                        | by members without it                                           |
 * | _rpc.ts, _requests.ts  | what other members send, checked and dispatched                 |
 * | errors.ts              | the named errors, with codes that cross the transport           |
 *
 * Membership: `--bootstrap` starts a cluster whose first entry adds this node; other nodes join
 * through any member (the request is forwarded to the leader), come in as learners and are
 * promoted by the leader once caught up, until the cluster has `voters` voters. Member ids are
 * never reused. The leader also tracks contact with every member and marks a silent member's
 * node down after `nodeTimeoutMs` (its instances leave DNS and the proxy) until it is heard again.
 *
 * @module
 */
import type { HostPort } from "../lib/host_port.ts";
import type { Command, Session } from "../store/mod.ts";
import {
  ClusterCore,
  type CoreOptions,
  SNAPSHOT_ENTRIES_DEFAULT,
  SNAPSHOT_KEEP_ENTRIES_DEFAULT,
  TICK_MS_DEFAULT,
} from "./_core.ts";
import { ClosedError, NotLeaderError } from "./errors.ts";
import { Join } from "./_join.ts";
import { Liveness } from "./_liveness.ts";
import { SessionTimers } from "./_session_timers.ts";
import { forward } from "./_requests.ts";
import { PROPOSAL_TIMEOUT_MS } from "./_proposals.ts";
import { Membership } from "./_membership.ts";
import { Proposals } from "./_proposals.ts";
import { type Identity, SqliteRaftStorage } from "./raft_storage.ts";
import { CHECKPOINT_EVERY_MS } from "./log_writer.ts";
import { type QueryHandler, Rpc } from "./_rpc.ts";
import { RemovedNotices } from "./_removed_notice.ts";
import { SnapshotShipping, upgradeLegacySnapshot } from "./_snapshot_shipping.ts";
import { clusterStatus, membersFromLeader, memberStatuses } from "./_status.ts";
import { type Hello, Transport, TransportError } from "./transport.ts";
import { Security } from "./_security.ts";
import { KeyShare } from "./_cluster_key.ts";
import { RejectedError, TimeoutError } from "./errors.ts";
import { errorText } from "../lib/error_text.ts";
import type { GapRecorder } from "../lib/gap_recorder.ts";
import type {
  Cluster,
  ClusterStatus,
  MemberStatus,
  Proposed,
  RaftClusterOptions,
} from "./types.ts";

export type { RaftClusterOptions };

export class RaftCluster implements Cluster {
  readonly #core: ClusterCore;
  readonly #proposals: Proposals;
  readonly #membership: Membership;
  readonly #join: Join;
  readonly #rpc: Rpc;
  readonly #shipping: SnapshotShipping;
  readonly #sessions: SessionTimers;
  readonly #security: Security | undefined;
  readonly #keys: KeyShare;
  /** A snapshot directory made for a `:memory:` log, removed on close. */
  readonly #tempDir: string | undefined;
  #closing: Promise<void> | undefined;
  #queries: QueryHandler | undefined;

  constructor(opts: RaftClusterOptions) {
    const o: CoreOptions = {
      ...opts,
      tickMs: opts.tickMs ?? TICK_MS_DEFAULT,
      snapshotEntries: opts.snapshotEntries ?? SNAPSHOT_ENTRIES_DEFAULT,
      snapshotKeepEntries: opts.snapshotKeepEntries ?? SNAPSHOT_KEEP_ENTRIES_DEFAULT,
      log: opts.log ?? ((line: string) => console.error(line)),
      random: opts.random ?? ((n: number) => Math.floor(Math.random() * n)),
      now: opts.now ?? (() => Date.now()),
      onFatal: opts.onFatal ?? (() => {}),
    };
    let dir = opts.snapshotDir;
    if (dir === undefined && opts.raftPath === ":memory:") {
      dir = this.#tempDir = Deno.makeTempDirSync({ prefix: "berth-snapshots-" });
    }
    dir ??= `${opts.raftPath.replace(/\/?[^/]*$/, "") || "."}/snapshots`;
    const snapshotDir = dir;
    const storage = SqliteRaftStorage.open(opts.raftPath, {
      confState: () => o.store.confState(),
      upgradeSnapshot: (snap) => upgradeLegacySnapshot(snapshotDir, snap),
      ...(opts.logWriter === undefined ? {} : { writer: opts.logWriter }),
      ...(opts.wrapLogWriter === undefined ? {} : { wrapWriter: opts.wrapLogWriter }),
    });
    for (const path of opts.checkpointPaths ?? []) {
      const failed = (e: Error) =>
        o.log(
          `cluster: cannot checkpoint ${path} (${e.message}); its WAL grows until it opens ` +
            `(tried again every ${CHECKPOINT_EVERY_MS} ms)`,
        );
      if (!storage.checkpoint(path, failed)) {
        throw new Error(`cluster: cannot checkpoint ${path}: the raft log has no log worker`);
      }
    }
    const transport = new Transport({
      listen: opts.bind,
      self: (): Hello => ({
        clusterId: core.identity?.clusterId ?? "",
        nodeId: core.identity?.id ?? 0,
        address: core.address,
      }),
      onMessage: (from, body) => this.#rpc.onMessage(from, body),
      onRequest: (from, body) => this.#rpc.onRequest(from, body),
      ...(opts.tls === undefined ? {} : {
        tls: {
          credentials: () => this.#security!.creds.current(),
          verifyPeer: (p) => this.#security!.peers.verifyPeer(p),
        },
      }),
      log: o.log,
    });
    const core = new ClusterCore(o, storage, transport);
    const security = opts.tls === undefined ? undefined : new Security(core, opts.tls);
    const proposals = new Proposals(core);
    const notices = new RemovedNotices(core);
    const keys = new KeyShare(core, opts.clusterKey);
    keys.attach(proposals);
    security?.attach(proposals, notices, keys);
    const membership = new Membership(core);
    const join = new Join(core, membership, proposals);
    const shipping = new SnapshotShipping(core, snapshotDir);
    const liveness = new Liveness(core, (cmd) => proposals.propose(cmd));
    const sessions = new SessionTimers({
      store: o.store,
      now: o.now,
      propose: (cmd) => proposals.proposeAsLeader(crypto.randomUUID(), cmd),
      log: o.log,
    });
    this.#rpc = new Rpc(core, {
      proposals,
      join,
      membership,
      shipping,
      sessions,
      security,
      notices,
      keys,
      queries: () => this.#queries,
    });
    core.hooks = {
      proposalsApplied: (done) => proposals.applied(done),
      leadershipLost: () => {
        proposals.leadershipLost();
        sessions.reset();
      },
      leaderTick: () => {
        liveness.check();
        sessions.tick();
        membership.maybePromote();
      },
      sendSnapshot: (addr, m) => shipping.send(addr, m),
      installSnapshot: (snap) => shipping.install(snap),
      applied: (entries, applied) => {
        shipping.applied(entries);
        shipping.maybeSnapshot(applied);
      },
      tick: () => {
        shipping.tick();
        security?.tick();
        keys.tick();
      },
      stopped: (e) => proposals.failAll(e),
    };
    this.#core = core;
    this.#proposals = proposals;
    this.#membership = membership;
    this.#join = join;
    this.#shipping = shipping;
    this.#sessions = sessions;
    this.#security = security;
    this.#keys = keys;
  }

  /** The join token made by `--bootstrap` with TLS (shown once by the agent), if any. */
  get bootstrapToken(): string | undefined {
    return this.#security?.bootstrapToken;
  }

  /** The address other members use for this node (the bound port once started). */
  get address(): string {
    return this.#core.address;
  }

  /** Intervals between the heartbeats this member received (GET /v1/berth/loop reads them). */
  get heartbeatGaps(): GapRecorder {
    return this.#core.heartbeatGaps;
  }

  /** The bound transport address (port 0 in tests gets a real one). */
  get bound(): HostPort {
    return this.#core.transport.address;
  }

  /**
   * Starts the transport and, when this node is (or becomes) a member, the raft node. With TLS
   * the credentials come first: made at bootstrap, checked (and renewed by enrollment when
   * expired) on a restart, got by enrollment before joining (the transport then starts).
   */
  async start(): Promise<void> {
    const c = this.#core;
    const sec = this.#security;
    if (sec === undefined && c.identity !== undefined && c.store.pki.ca() !== undefined) {
      throw new RejectedError(
        "cluster: this data directory belongs to a cluster with TLS; start it without --tls off",
      );
    }
    this.#join.watchNode();
    sec?.peers.watchRemovals();
    if (c.identity !== undefined) {
      await sec?.prepareMember();
      await this.#startTransport();
      await c.startNode(c.identity);
      c.announce();
      this.#join.refreshNode();
    } else if (c.o.bootstrap) {
      const clusterId = crypto.randomUUID();
      const extra = [
        ...(sec?.prepareBootstrap(clusterId) ?? []),
        ...this.#keys.bootstrapCommands(),
      ];
      await this.#startTransport();
      await this.#join.bootstrap(clusterId, extra);
    } else if (c.o.join.length > 0) {
      if (sec !== undefined && !sec.creds.enrolled) {
        this.#join.joinInBackground(c.o.join, () => this.#enrollAndListen(c.o.join));
      } else {
        await this.#startTransport();
        this.#join.joinInBackground(c.o.join);
      }
    } else {
      if (sec === undefined || sec.creds.enrolled) await this.#startTransport();
      c.o.log(
        `cluster: ${c.o.node} is not in a cluster yet; start with --bootstrap or --join, ` +
          `or run: berth join ADDR`,
      );
    }
  }

  /** Asks the members at `addresses` to add this node (`berth join`). */
  join(addresses: string[]): Promise<void> {
    const sec = this.#security;
    if (sec !== undefined && !sec.creds.enrolled) {
      return this.#join.join(addresses, () => this.#enrollAndListen(addresses));
    }
    return this.#join.join(addresses);
  }

  async #startTransport(): Promise<void> {
    const c = this.#core;
    if (c.started) return;
    await c.transport.start();
    c.started = true;
  }

  /** With TLS, before a first join: a certificate by enrollment, then the listener. */
  async #enrollAndListen(addresses: string[]): Promise<void> {
    await this.#security!.enrollThrough(addresses);
    await this.#startTransport();
  }

  /** Commits `command` through consensus, applies it here, resolves with its index. */
  propose(command: Command): Promise<Proposed> {
    return this.#proposals.propose(command);
  }

  /**
   * Commits `command` only while this member leads (NotLeaderError otherwise, never forwarded):
   * for the loops that run on the leader alone (ACME ordering), whose decisions a deposed
   * leader must not pass on.
   */
  proposeAsLeader(command: Command): Promise<Proposed> {
    return this.#proposals.proposeAsLeader(crypto.randomUUID(), command);
  }

  /** This member's Raft term while it leads, else null (leader-only loops poll it). */
  leaderTerm(): number | null {
    return this.#core.role === "leader" ? this.#core.term() : null;
  }

  /**
   * Restarts session `id`'s TTL on the leader: here when this member leads, otherwise the
   * request is forwarded (renewals are not written to the log; _session_timers.ts). The leader
   * answers only after a read barrier confirmed its leadership, from its replica as of then: a
   * deposed leader never confirms a renewal the cluster may have ended meanwhile.
   */
  async renewSession(id: string): Promise<Session | undefined> {
    const c = this.#core;
    await c.awaitLeader(c.o.now() + PROPOSAL_TIMEOUT_MS);
    if (c.role === "leader") {
      try {
        await this.#proposals.leaderBarrier();
        return this.#sessions.renew(id);
      } catch (e) {
        if (!(e instanceof NotLeaderError)) throw e;
        await c.awaitLeader(c.o.now() + PROPOSAL_TIMEOUT_MS); // deposed: ask the new leader
      }
    }
    const s = await forward(c, {
      body: { t: "session.renew", id },
      timeoutMs: PROPOSAL_TIMEOUT_MS,
      what: "renew the session with",
    }) as Session | null;
    return s ?? undefined;
  }

  /** When session `id` expires on this member's clock while it leads (undefined: not known). */
  sessionDeadline(id: string): number | undefined {
    return this.#sessions.deadline(id);
  }

  /** ReadIndex (Raft §6.4): resolves once this replica has applied everything committed. */
  readBarrier(): Promise<number> {
    return this.#proposals.readBarrier();
  }

  /** Leadership to `name`, or to the voter with the longest log when null. */
  transferLeader(name: string | null): Promise<void> {
    return this.#membership.transferLeader(name);
  }

  /** Removes the member called `name` (gone for good). */
  removePeer(name: string): Promise<void> {
    return this.#membership.removePeer(name);
  }

  /** Leaves gracefully: hands leadership off first when leader, then asks to be removed. */
  leave(): Promise<void> {
    return this.#membership.leave();
  }

  /**
   * Who answers other members' `ask` (the agent's explain sources); before it is set, a
   * question is refused with "this member answers no queries yet".
   */
  answerQueries(handler: QueryHandler): void {
    this.#queries = handler;
  }

  /**
   * Asks member `name` over the cluster transport (mutual TLS, at its cluster address) and
   * waits up to `timeoutMs` for its query handler's answer. Rejects with one line: not a member,
   * unreachable, no answer in time, or the other member's refusal.
   */
  async ask(name: string, q: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
    const c = this.#core;
    const m = c.store.members().find((x) => x.name === name);
    if (m === undefined) throw new RejectedError(`${name} is not a cluster member`);
    if (m.id === c.self) throw new RejectedError(`${name} is this member`);
    const addr = c.addresses.get(m.id) ?? m.address;
    if (addr === "") throw new RejectedError(`${name} has no known cluster address`);
    try {
      return await c.transport.request(addr, { t: "query", q }, { timeoutMs });
    } catch (e) {
      if (e instanceof TransportError && e.code === "timeout") {
        throw new TimeoutError(`no answer within ${timeoutMs} ms`);
      }
      throw new RejectedError(errorText(e).split("\n")[0]!.slice(0, 200));
    }
  }

  /** This member's identity, once it is in a cluster. */
  identity(): Identity | undefined {
    return this.#core.identity;
  }

  status(): ClusterStatus {
    return clusterStatus(this.#core);
  }

  members(): MemberStatus[] {
    return memberStatuses(this.#core);
  }

  membersFromLeader(): Promise<MemberStatus[]> {
    return membersFromLeader(this.#core);
  }

  /** Stops the loop (everything waiting fails with ClosedError), the transport and the log. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const c = this.#core;
      if (!c.closed) c.stop(new ClosedError("cluster is closed"));
      await c.transport.close();
      this.#shipping.close();
      this.#security?.close();
      await c.storage.close();
      if (this.#tempDir !== undefined) await Deno.remove(this.#tempDir, { recursive: true });
    })();
    return this.#closing;
  }
}
