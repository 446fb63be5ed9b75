/**
 * The cluster runtime: drives a `raft/` RawNode for real. A ticker calls `tick()`; whenever
 * something changed, the ready loop runs raft's order, with the disk write off the event loop
 * (etcd-raft's asynchronous storage writes):
 *
 *   post the batch (snapshot, entries, hard state: one synced transaction) to the log writer
 *   → send at once what does not depend on it: a leader's appends, heartbeats and snapshots
 *     whose commit index is durable here (followers then write in parallel with the leader)
 *   → on the writer's acknowledgement: send the rest (votes, append responses, …); a ready
 *     that only moves the commit index does not wait for it (_early_sends.ts mustWaitForWrite)
 *   → apply committed entries into the store, in slices with the event loop served between
 *   → advance, and take the next ready (everything stepped meanwhile: group commit).
 *
 * then settles whatever waits on that state: read states whose index is applied, and the
 * conditions of `until()` (a leader known, an index applied, a membership change visible).
 *
 * The other units (proposals, join, membership, snapshot shipping, liveness, status) read the
 * state kept here and hook into the loop through `hooks`; nothing here imports them. (Over 500
 * lines: the loop, the state it keeps and the futures on that state are one unit; what may be
 * sent early is decided in _early_sends.ts.)
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { ReadyScheduler } from "./_ready_scheduler.ts";
import {
  decodeConfChange,
  type Entry,
  isEmptySnapshot,
  type Message,
  ProposalDroppedError,
  RawNode,
  type Ready,
  type Snapshot,
} from "../../raft/mod.ts";
import { formatHostPort } from "../lib/host_port.ts";
import type { Store } from "../store/mod.ts";
import { type AppliedProposal, applyCommitted } from "./_apply.ts";
import { mustWaitForWrite, splitEarly } from "./_early_sends.ts";
import { MemberView } from "./_member_view.ts";
import { GapRecorder } from "../lib/gap_recorder.ts";
import { ClosedError, deadlineError, NoLeaderError, RejectedError } from "./errors.ts";
import type { Identity, SqliteRaftStorage } from "./raft_storage.ts";
import type { Transport } from "./transport.ts";
import type { RaftClusterOptions, Role } from "./types.ts";
import { type Deferred, deferred, Waiters } from "./_waiters.ts";

/** Milliseconds per raft tick. Election timeout is ELECTION_TICKS ticks (randomized up to 2×). */
export const TICK_MS_DEFAULT = 100;
export const ELECTION_TICKS = 10;
export const HEARTBEAT_TICKS = 1;
/** Longest a read barrier (ReadIndex) waits. */
export const READ_TIMEOUT_MS = 5_000;
/** Applied entries past the last snapshot that trigger a new snapshot. */
export const SNAPSHOT_ENTRIES_DEFAULT = 8192;
/** Entries kept behind a snapshot so slightly slow followers catch up from the log. */
export const SNAPSHOT_KEEP_ENTRIES_DEFAULT = 2048;
/** Raft proposal bytes not yet committed beyond which proposals are refused. */
export const UNCOMMITTED_BYTES_MAX = 64 * 1024 * 1024;
/** Most committed entries applied in one store transaction. */
export const APPLY_SLICE_ENTRIES = 256;
/** Applying longer than this (ms) yields to the event loop before the next slice. */
export const APPLY_SLICE_MS = 5;
/**
 * Entry data bytes per apply slice, about: an entry's apply costs with its size (a restore
 * chunk of 256 KiB is checked and staged in ~50 ms at 100,000 instances), so a run of large
 * entries applies one slice at a time, the event loop served between.
 */
export const APPLY_SLICE_BYTES = 256 * 1024;

/**
 * RaftClusterOptions with every default filled in (RaftCluster's constructor does): only
 * `nodeMeta`, `bootstrapCommands` and `tls` stay optional, and `snapshotDir` is resolved by the
 * snapshot unit.
 */
export type CoreOptions =
  & Required<
    Omit<
      RaftClusterOptions,
      | "snapshotDir"
      | "nodeMeta"
      | "bootstrapCommands"
      | "tls"
      | "clusterKey"
      | "logWriter"
      | "wrapLogWriter"
      | "checkpointPaths"
    >
  >
  & Pick<RaftClusterOptions, "nodeMeta" | "bootstrapCommands" | "tls" | "clusterKey">;

/** How the other units hook into the loop. */
export interface CoreHooks {
  /** Entries with a request id were applied (resolves the proposers' futures). */
  proposalsApplied(done: AppliedProposal[]): void;
  /** This member stopped being the leader: its proposals in flight may be overwritten. */
  leadershipLost(): void;
  /** Each tick while this member leads (liveness, promotion). */
  leaderTick(): void;
  /** Ships a MsgSnap (its data names a snapshot file) to `addr`. */
  sendSnapshot(addr: string, m: Message): void;
  /**
   * Installs a persisted snapshot into the store (the ready loop, and recovery at start); the
   * loop waits for a returned promise.
   */
  installSnapshot(snap: Snapshot): void | Promise<void>;
  /** Committed entries were applied, up to index `applied` (when to take a snapshot). */
  applied(entries: readonly Entry[], applied: number): void;
  /** Each tick, on every member. */
  tick(): void;
  /** The loop stopped (closed or fatal): fail whatever still waits with `e`. */
  stopped(e: Error): void;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export class ClusterCore {
  readonly o: CoreOptions;
  readonly store: Store;
  readonly storage: SqliteRaftStorage;
  readonly transport: Transport;
  readonly waiters = new Waiters();
  hooks: CoreHooks = {
    proposalsApplied: () => {},
    leadershipLost: () => {},
    leaderTick: () => {},
    sendSnapshot: () => {},
    installSnapshot: () => {},
    applied: () => {},
    tick: () => {},
    stopped: () => {},
  };
  identity: Identity | undefined;
  node: RawNode | undefined;
  closed = false;
  started = false;
  leader = 0;
  role: Role = "follower";
  /** The applied membership, in memory. */
  readonly members: MemberView;
  /** id → cluster address, from the store's members, join answers and hellos. */
  readonly addresses: Map<number, string>;
  /** id → last time a message came from it (liveness, on the leader). */
  readonly heard = new Map<number, number>();
  /** Last time a message came from the leader (undefined: never). */
  leaderContact: number | undefined;
  /** Intervals between the heartbeats this member steps, per leader and term (benches). */
  readonly heartbeatGaps = new GapRecorder();
  /** When this member last became leader (every member's contact counts from there). */
  leaderSince = 0;
  #ticker: ReturnType<typeof setInterval> | undefined;
  /** When the ready loop runs (it may be waiting for the writer, an install or a yield). */
  readonly #scheduler = new ReadyScheduler(() =>
    this.#loop().catch((e) => {
      if (!this.closed) this.fatal(e as Error);
    })
  );
  #selfRemoved = false;
  #removedLogged = false;
  /** Set by `leave()`: this member's removal is expected, not a reason to fail. */
  leaving = false;
  /** The leader last named in the log. */
  #leaderLogged = 0;
  readonly #reads = new Map<string, Deferred<number>>();
  /** Read states whose index is not applied yet. */
  #pendingReads: { index: number; key: string }[] = [];

  constructor(o: CoreOptions, storage: SqliteRaftStorage, transport: Transport) {
    this.o = o;
    this.store = o.store;
    this.storage = storage;
    this.transport = transport;
    this.identity = storage.identity();
    storage.onWriteFailure((e) => {
      if (!this.closed) this.fatal(e);
    });
    this.members = new MemberView(o.store);
    this.addresses = this.members.addresses;
  }

  /** This member's id, 0 before it is in a cluster. */
  get self(): number {
    return this.identity?.id ?? 0;
  }

  /** The address other members use for this node (the bound port once started). */
  get address(): string {
    const port = this.started ? this.transport.address.port : this.o.bind.port;
    return formatHostPort({ host: this.o.advertise, port });
  }

  /** The current raft term (0 before the node runs). */
  term(): number {
    return this.node?.raft.term ?? this.storage.hardState().term;
  }

  async startNode(identity: Identity): Promise<void> {
    // A crash between persisting a received snapshot and installing it in the store: the log
    // now starts after the snapshot, so the store must catch up from it before raft runs.
    const snap = this.storage.snapshot();
    if (!isEmptySnapshot(snap) && snap.metadata.index > this.store.appliedIndex()) {
      await this.hooks.installSnapshot(snap);
      this.o.log(`cluster: restored the store from the snapshot at ${snap.metadata.index}`);
    }
    if (this.members.wasRemoved(identity.id)) throw new RejectedError(removedMessage(identity));
    await this.storage.commitAtLeast(this.store.appliedIndex());
    const node = new RawNode({
      id: identity.id,
      storage: this.storage,
      electionTick: ELECTION_TICKS,
      heartbeatTick: HEARTBEAT_TICKS,
      random: this.o.random,
      preVote: true,
      checkQuorum: true,
      maxUncommittedEntriesSize: UNCOMMITTED_BYTES_MAX,
      applied: this.store.appliedIndex(),
    });
    this.node = node;
    // A lone voter need not wait an election timeout.
    const cs = this.store.confState();
    const voters = cs.voters.length > 0 ? cs.voters : this.#storageVoters();
    if (voters.length === 1 && voters[0] === identity.id) node.campaign();
    this.#ticker = setInterval(() => this.#tick(), this.o.tickMs);
    this.schedule();
  }

  /** Voters named by the unapplied bootstrap entries (a fresh bootstrap before first apply). */
  #storageVoters(): number[] {
    try {
      const last = this.storage.lastIndex();
      const ents = last >= 1
        ? this.storage.entries(this.storage.firstIndex(), last + 1, 1 << 20)
        : [];
      const out: number[] = [];
      for (const e of ents) {
        if (e.type !== "confChange") continue;
        const cc = decodeConfChange(e.data);
        if (cc.type === "addNode") out.push(cc.nodeId);
      }
      return out;
    } catch {
      return [];
    }
  }

  // ---------------------------------------------------------------- the loop

  #tick(): void {
    const node = this.node;
    if (node === undefined || this.closed) return;
    node.tick();
    this.hooks.tick();
    if (this.role === "leader") this.hooks.leaderTick();
    this.schedule();
  }

  /** Runs the ready loop soon (once per turn of the event loop however often it is asked). */
  schedule(): void {
    if (this.closed) return;
    this.#scheduler.schedule();
  }

  /** A broken invariant or a failed disk write: stop this member rather than diverge. */
  fatal(e: Error): void {
    this.o.log(`cluster: fatal: ${e.stack ?? e.message}; this member stops taking part`);
    this.stop(new ClosedError(`cluster stopped: ${e.message}`));
    this.o.onFatal(e);
  }

  /** Stops the ticker and the loop; everything waiting fails with `e`. */
  stop(e: Error): void {
    this.closed = true;
    this.#scheduler.stop();
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    for (const d of this.#reads.values()) d.reject(e);
    this.#reads.clear();
    this.waiters.failAll(e);
    this.hooks.stopped(e);
  }

  /** Resolves after `ms`, or sooner when the loop stops (a retry's backoff). */
  pause(ms: number): Promise<void> {
    return this.waiters.until(() => this.closed, { ms, timeout: () => new Error("pause over") })
      .catch(() => {});
  }

  /**
   * Takes readies until none is left. Between ready() and advance() (while the write is under
   * way, an install runs, or apply yields) the event loop serves everything else, and what is
   * stepped into raft meanwhile goes into the next ready.
   */
  async #loop(): Promise<void> {
    const node = this.node;
    if (node === undefined) return;
    while (!this.closed && node.hasReady()) {
      this.#scheduler.served();
      const rd = node.ready();
      if (rd.softState !== undefined) this.#onSoftState(rd.softState.lead, rd.softState.raftState);
      const durable = { hardState: this.storage.hardState(), lastIndex: this.storage.lastIndex() };
      const { now, held } = splitEarly(rd, this.role === "leader", durable);
      const mustWait = mustWaitForWrite(rd, durable);
      // 1. Post the write: snapshot, entries and hard state in one synced transaction.
      const written = this.storage.persist({
        entries: rd.entries,
        hardState: rd.hardState,
        snapshot: rd.snapshot,
        sync: rd.mustSync,
      });
      written.catch(() => {}); // awaited below; a send that throws first must not leave it unhandled
      // 2. Send what does not depend on the write (_early_sends.ts); the rest waits for it,
      // unless nothing depends on it at all (a commit index moved): then nothing waits, and the
      // writer keeps it before any later write (a failure stops the member: onWriteFailure).
      for (const m of now) this.#send(m);
      if (mustWait) {
        await written;
        if (this.closed) return;
      }
      for (const m of held) this.#send(m);
      // 3. Apply.
      if (rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot)) {
        await this.hooks.installSnapshot(rd.snapshot);
        if (this.closed) return;
        this.o.log(`cluster: installed snapshot at index ${rd.snapshot.metadata.index}`);
      }
      if (!await this.#apply(rd)) return;
      for (const rs of rd.readStates) {
        this.#pendingReads.push({ index: rs.index, key: hex(rs.requestCtx) });
      }
      // 4. Advance.
      node.advance();
      this.#afterApply();
      if (this.#selfRemoved) this.removed();
    }
  }

  /**
   * After a restart: says hello to every member this replica knows, so that one that removed
   * this member while it was away says so (see Rpc) even if this member never sends raft
   * messages (a learner does not campaign).
   */
  announce(): void {
    for (const [id, addr] of this.addresses) {
      if (id !== this.self) this.transport.send(addr, { t: "hello" });
    }
  }

  /** Apply found this member's own removal (acted on after the ready loop). */
  selfRemoved(): void {
    this.#selfRemoved = true;
  }

  /**
   * This member was removed (its own log says so, or a member told it): it must not serve stale
   * data. Stops, logs why once, and exits through `onFatal` — except while it leaves on purpose.
   */
  removed(): void {
    this.#selfRemoved = false;
    if (this.closed || this.identity === undefined || this.#removedLogged) return;
    if (this.leaving) {
      this.#removedLogged = true;
      this.o.log(`cluster: this member (id ${this.self}) was removed from the cluster`);
      return;
    }
    const msg = removedMessage(this.identity);
    this.o.log(`cluster: ${msg}`);
    this.stop(new ClosedError(msg));
    this.o.onFatal(new RejectedError(msg));
  }

  #onSoftState(lead: number, state: string): void {
    const was = this.role;
    const isLearner = this.members.isLearner(this.self);
    this.role = state === "leader"
      ? "leader"
      : state === "candidate" || state === "preCandidate"
      ? "candidate"
      : isLearner
      ? "learner"
      : "follower";
    this.leader = lead;
    this.#logLeader();
    if (was === "leader" && this.role !== "leader") this.hooks.leadershipLost();
    if (this.role === "leader" && was !== "leader") {
      this.leaderSince = this.o.now();
      // Every member gets a full node timeout of grace from a new leader.
      for (const id of this.addresses.keys()) this.heard.set(id, this.leaderSince);
    }
  }

  /**
   * Applies `rd`'s committed entries in slices of APPLY_SLICE_ENTRIES or APPLY_SLICE_BYTES of
   * entry data (a slice holds one entry at least), yielding to the event loop once a run of
   * slices took APPLY_SLICE_MS (a member catching up on many entries keeps serving). False when
   * the loop stopped meanwhile.
   */
  async #apply(rd: Ready): Promise<boolean> {
    const ents = rd.committedEntries;
    let since = performance.now();
    for (let i = 0; i < ents.length;) {
      let end = i + 1;
      let bytes = ents[i]!.data.byteLength;
      while (
        end < ents.length && end - i < APPLY_SLICE_ENTRIES && bytes < APPLY_SLICE_BYTES
      ) bytes += ents[end++]!.data.byteLength;
      const slice = i === 0 && end === ents.length ? ents : ents.slice(i, end);
      i = end;
      const done = applyCommitted(this, slice);
      this.hooks.applied(slice, this.store.appliedIndex());
      if (done.length > 0) this.hooks.proposalsApplied(done);
      if (i < ents.length && performance.now() - since >= APPLY_SLICE_MS) {
        this.#afterApply();
        await new Promise((resolve) => setImmediate(resolve));
        if (this.closed) return false;
        since = performance.now();
      }
    }
    return true;
  }

  /**
   * Logs a new leader by name. A leader not yet in this member's table (a fresh bootstrap, a
   * joiner catching up) is logged once the table has it, after a later apply.
   */
  #logLeader(): void {
    if (this.leader === 0 || this.leader === this.#leaderLogged) return;
    const name = this.store.members().find((m) => m.id === this.leader)?.name;
    if (name === undefined) return;
    this.#leaderLogged = this.leader;
    this.o.log(`cluster: leader is ${name} (id ${this.leader})`);
  }

  #afterApply(): void {
    this.#logLeader();
    const applied = this.store.appliedIndex();
    // Reads whose index is applied can be served now.
    if (this.#pendingReads.length > 0) {
      const still: { index: number; key: string }[] = [];
      for (const r of this.#pendingReads) {
        if (r.index <= applied) {
          const d = this.#reads.get(r.key);
          this.#reads.delete(r.key);
          d?.resolve(r.index);
        } else still.push(r);
      }
      this.#pendingReads = still;
    }
    this.waiters.check();
  }

  #send(m: Message): void {
    const node = this.node!;
    const addr = this.addresses.get(m.to);
    if (addr === undefined) {
      node.reportUnreachable(m.to);
      if (m.type === "MsgSnap") node.reportSnapshot(m.to, "failure");
      return;
    }
    if (m.type === "MsgSnap" && m.snapshot !== undefined) {
      this.hooks.sendSnapshot(addr, m);
      return;
    }
    if (!this.transport.send(addr, { t: "raft", m })) node.reportUnreachable(m.to);
  }

  /** Steps a validated message from another member into raft. */
  step(m: Message): void {
    if (m.from === this.leader) this.leaderContact = this.o.now();
    if (m.type === "MsgHeartbeat") this.heartbeatGaps.mark(`${m.from}/${m.term}`, this.o.now());
    try {
      this.node!.step(m);
    } catch (e) {
      if (e instanceof ProposalDroppedError) return;
      throw e;
    }
    this.schedule();
  }

  // ---------------------------------------------------------------- futures

  /**
   * Resolves once `holds()` is true (checked now and after every ready batch), or rejects with
   * `timeout()` at `deadline` (ms, on `o.now()`'s clock).
   */
  until(
    holds: () => boolean,
    { deadline, timeout }: { deadline: number; timeout: () => Error },
  ): Promise<void> {
    return this.waiters.until(holds, { ms: deadline - this.o.now(), timeout });
  }

  /** The leader's id once one is known. */
  async awaitLeader(deadline: number): Promise<number> {
    if (this.node === undefined) {
      throw new NoLeaderError(`${this.o.node} is not a member of a cluster yet`);
    }
    await this.until(() => this.leader !== 0, {
      deadline,
      timeout: () => new NoLeaderError("no leader elected"),
    });
    return this.leader;
  }

  /** The applied index once it has reached `index`. */
  async awaitApplied(index: number, deadline: number): Promise<number> {
    await this.until(() => this.store.appliedIndex() >= index, {
      deadline,
      timeout: () => deadlineError(`waiting for index ${index} to apply`),
    });
    return this.store.appliedIndex();
  }

  /** ReadIndex (Raft §6.4): the commit index the leader confirmed, once applied here. */
  async readIndex(deadline: number): Promise<number> {
    const ctx = crypto.getRandomValues(new Uint8Array(16));
    const key = hex(ctx);
    const d = deferred<number>(deadline - this.o.now(), {
      timeout: () => new NoLeaderError("read index timed out (no quorum?)"),
      forget: () => this.#reads.delete(key),
    });
    this.#reads.set(key, d);
    this.node!.readIndex(ctx);
    this.schedule();
    const index = await d.promise;
    return await this.awaitApplied(index, deadline);
  }

  // ---------------------------------------------------------------- members

  memberName(id: number): string {
    return this.members.name(id);
  }

  /** This member's role now: learner/follower follows the membership, not the last soft state. */
  currentRole(): Role {
    if (this.role === "leader" || this.role === "candidate") return this.role;
    return this.members.isLearner(this.self) ? "learner" : "follower";
  }
}

function removedMessage(identity: Identity): string {
  return `this member (id ${identity.id}) was removed from cluster ${identity.clusterId}; ` +
    `to join again, start with an empty --data-dir and --join`;
}
