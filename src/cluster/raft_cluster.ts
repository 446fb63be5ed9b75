/**
 * The Raft cluster behind `propose()`: drives a `raft/` RawNode for real, with a ticker, the
 * durable log in SQLite (raft_storage.ts), the TCP transport (transport.ts), and the store as the
 * state machine.
 *
 * The ready loop follows raft's contract: persist (one SQLite transaction, synced) → send →
 * apply committed entries into the store (one transaction that also writes the applied index) →
 * advance. Proposals from any member carry a request id (the store applies a retried id once)
 * and are forwarded to the leader over the transport; the proposer resolves once its own replica
 * has applied the entry, so a client reads its own write from any member.
 *
 * Membership: `--bootstrap` starts a cluster whose first entry adds this node; other nodes join
 * through any member (the request is forwarded to the leader), come in as learners and are
 * promoted by the leader once caught up, until the cluster has `voters` voters. Member ids are
 * never reused. The leader also tracks contact with every member and marks a silent member's
 * node down after `nodeTimeoutMs` (its instances leave DNS and the proxy) until it is heard again.
 *
 * @module
 */
import { pack, unpack } from "msgpackr";
import { setImmediate } from "node:timers";
import {
  type ConfChange,
  type ConfState,
  decodeConfChange,
  encodeConfChange,
  type Entry,
  isEmptySnapshot,
  type Message,
  ProposalDroppedError,
  RawNode,
  type Ready,
  validateMessage,
} from "../../raft/mod.ts";
import { formatHostPort, type HostPort } from "../lib/host_port.ts";
import {
  type ApplyEntry,
  checkSnapshot,
  type Command,
  type Member,
  type Store,
} from "../store/mod.ts";
import { type Identity, SqliteRaftStorage } from "./raft_storage.ts";
import { type Hello, Transport } from "./transport.ts";
import {
  type Cluster,
  type ClusterStatus,
  type MemberStatus,
  NoLeaderError,
  type Proposed,
  type Role,
} from "./types.ts";

/** Milliseconds per raft tick. Election timeout is ELECTION_TICKS ticks (randomized up to 2×). */
export const TICK_MS_DEFAULT = 100;
export const ELECTION_TICKS = 10;
export const HEARTBEAT_TICKS = 1;
/** Longest a proposal waits for a leader and for its entry to apply. */
export const PROPOSAL_TIMEOUT_MS = 10_000;
/** Longest member name accepted in a join (the same rule as --node). */
const JOIN_NAME_MAX = 63;
/** Longest `berth join` keeps asking (retrying while the cluster elects a leader). */
export const JOIN_TIMEOUT_MS = 15_000;
/** Longest a read barrier (ReadIndex) waits. */
export const READ_TIMEOUT_MS = 5_000;
/** Applied entries past the last snapshot that trigger a new snapshot. */
export const SNAPSHOT_ENTRIES_DEFAULT = 8192;
/** Entries kept behind a snapshot so slightly slow followers catch up from the log. */
export const SNAPSHOT_KEEP_ENTRIES_DEFAULT = 2048;
/** Snapshot bytes per transport frame when sending a snapshot to a lagging member. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Largest snapshot a member accepts (bounds memory while reassembling chunks). */
export const SNAPSHOT_BYTES_MAX = 1024 * 1024 * 1024;
/** A learner within this many entries of the leader's log counts as caught up. */
export const PROMOTE_LAG_ENTRIES = 64;
/** Most proposals waiting for their entry at once; more are refused. */
export const PENDING_PROPOSALS_MAX = 65_536;
/** Raft proposal bytes not yet committed beyond which proposals are refused. */
export const UNCOMMITTED_BYTES_MAX = 64 * 1024 * 1024;
/** Largest proposal (one encoded command). */
export const PROPOSAL_BYTES_MAX = 4 * 1024 * 1024;

export interface RaftClusterOptions {
  store: Store;
  /** Path of the raft log database (`<data-dir>/raft.db`), `:memory:` in tests. */
  raftPath: string;
  node: string;
  /** Cluster listen address (`--bind`). */
  bind: HostPort;
  /** Address other members dial (`--advertise` with the port of `--bind`). */
  advertise: string;
  bootstrap: boolean;
  join: string[];
  /** Voters the cluster grows to by promoting caught-up learners. */
  voters: number;
  nodeTimeoutMs: number;
  tickMs?: number;
  snapshotEntries?: number;
  snapshotKeepEntries?: number;
  log?: (line: string) => void;
  /** Called once if this member must stop (a broken invariant or a failed disk write). */
  onFatal?: (e: Error) => void;
  /** Random integer in [0, n) for raft's election jitter. */
  random?: (n: number) => number;
  now?: () => number;
}

type ResolvedOptions = Required<RaftClusterOptions>;

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

/** Normal entry payload: request id and command. */
interface Proposal {
  r: string;
  c: Command;
}

/** Member info carried in a conf change's context. */
interface JoinContext {
  name: string;
  address: string;
  nonce: string;
}

type Request =
  | { t: "propose"; id: string; cmd: Command }
  | { t: "join"; name: string; address: string; nonce: string }
  | { t: "remove"; id: number }
  | { t: "transfer"; to: number };

interface JoinAnswer {
  clusterId: string;
  id: number;
  members: { id: number; name: string; address: string }[];
}

function deadlineError(what: string): Error {
  return new Error(`${what} timed out; it may or may not have taken effect`);
}

/**
 * A promise settled through `w`, or rejected with `timeout()` after `ms` (when `forget` first
 * unregisters `w` from wherever it was waiting).
 */
function withDeadline<T>(
  ms: number,
  timeout: () => Error,
  forget: () => void,
): { promise: Promise<T>; w: Waiter<T> } {
  let w: Waiter<T> | undefined;
  const promise = new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      forget();
      reject(timeout());
    }, Math.max(1, ms));
    w = {
      resolve: (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      reject: (e) => {
        clearTimeout(timer);
        reject(e);
      },
    };
  });
  return { promise, w: w! };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export class RaftCluster implements Cluster {
  readonly #o: ResolvedOptions;
  readonly #store: Store;
  readonly #storage: SqliteRaftStorage;
  readonly #transport: Transport;
  #identity: Identity | undefined;
  #node: RawNode | undefined;
  #ticker: ReturnType<typeof setInterval> | undefined;
  #scheduled = false;
  #closed = false;
  #leader = 0;
  #role: Role = "follower";
  /** id → cluster address, from the store's members, join answers and hellos. */
  readonly #addresses = new Map<number, string>();
  /** id → last time a message came from it (liveness, on the leader; leader contact elsewhere). */
  readonly #heard = new Map<number, number>();
  #leaderSince = 0;
  readonly #proposals = new Map<string, Waiter<Proposed>>();
  readonly #reads = new Map<string, Waiter<number>>();
  /** Waiters for the applied index to reach a value. */
  #applyWaiters: { index: number; w: Waiter<number> }[] = [];
  #leaderWaiters: Waiter<void>[] = [];
  /** Read states whose index is not applied yet. */
  #pendingReads: { index: number; key: string }[] = [];
  /** The snapshot being received (one at a time). */
  #snapTransfer: { key: string; from: number; parts: Uint8Array[]; bytes: number } | undefined;
  #joinChain: Promise<unknown> = Promise.resolve();
  #joining: Promise<void> | undefined;
  #liveness = new Set<string>();
  #promoting = false;
  #started = false;

  constructor(opts: RaftClusterOptions) {
    this.#o = {
      tickMs: TICK_MS_DEFAULT,
      snapshotEntries: SNAPSHOT_ENTRIES_DEFAULT,
      snapshotKeepEntries: SNAPSHOT_KEEP_ENTRIES_DEFAULT,
      log: (line: string) => console.error(line),
      random: (n: number) => Math.floor(Math.random() * n),
      now: () => Date.now(),
      onFatal: () => {},
      ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
    } as unknown as ResolvedOptions;
    this.#store = opts.store;
    this.#storage = SqliteRaftStorage.open(opts.raftPath, {
      confState: () => this.#store.confState(),
    });
    this.#identity = this.#storage.identity();
    this.#transport = new Transport({
      listen: opts.bind,
      self: (): Hello => ({
        clusterId: this.#identity?.clusterId ?? "",
        nodeId: this.#identity?.id ?? 0,
        address: this.#address,
      }),
      onMessage: (from, body) => this.#onMessage(from, body),
      onRequest: (from, body) => this.#onRequest(from, body),
      log: this.#o.log,
    });
    this.#store.subscribe((c) => {
      if (c.tables.has("members")) this.#refreshAddresses();
    });
    this.#refreshAddresses();
  }

  /** The address other members use for this node (the bound port once started). */
  get address(): string {
    return this.#address;
  }

  get #address(): string {
    const port = this.#started ? this.#transport.address.port : this.#o.bind.port;
    return formatHostPort({ host: this.#o.advertise, port });
  }

  /** Starts the transport and, when this node is (or becomes) a member, the raft node. */
  async start(): Promise<void> {
    await this.#transport.start();
    this.#started = true;
    if (this.#identity !== undefined) {
      this.#startNode(this.#identity);
    } else if (this.#o.bootstrap) {
      this.#bootstrap();
    } else if (this.#o.join.length > 0) {
      this.#joining = this.#joinLoop(this.#o.join);
      this.#joining.catch(() => {});
    } else {
      this.#o.log(
        `cluster: ${this.#o.node} is not in a cluster yet; start with --bootstrap or --join, ` +
          `or run: berth join ADDR`,
      );
    }
  }

  /** The bound transport address (port 0 in tests gets a real one). */
  get bound(): HostPort {
    return this.#transport.address;
  }

  // ---------------------------------------------------------------- membership bootstrap/join

  #bootstrap(): void {
    if (this.#store.appliedIndex() > 0) {
      throw new Error(
        `cluster: cannot bootstrap: the store already holds state (index ` +
          `${this.#store.appliedIndex()}) but no cluster identity; use an empty --data-dir`,
      );
    }
    const identity: Identity = {
      clusterId: crypto.randomUUID(),
      id: 1,
      nonce: crypto.randomUUID(),
    };
    const ctx: JoinContext = { name: this.#o.node, address: this.#address, nonce: identity.nonce };
    const cc: ConfChange = { type: "addNode", nodeId: 1, context: pack(ctx) };
    const entry: Entry = { term: 1, index: 1, type: "confChange", data: encodeConfChange(cc) };
    this.#storage.bootstrap([entry], { term: 1, vote: 0, commit: 1 }, identity);
    this.#identity = identity;
    this.#o.log(`cluster: bootstrapped cluster ${identity.clusterId} with ${this.#o.node} as id 1`);
    this.#startNode(identity);
  }

  /** Asks the member at `address` to add this node; retried until it answers or `close()`. */
  join(addresses: string[]): Promise<void> {
    if (this.#identity !== undefined) {
      return Promise.reject(
        new Error(
          `already a member of cluster ${this.#identity.clusterId} (id ${this.#identity.id}); ` +
            `to join another cluster, start with an empty --data-dir`,
        ),
      );
    }
    if (this.#joining !== undefined) return this.#joining;
    const until = this.#o.now() + JOIN_TIMEOUT_MS;
    this.#joining = this.#joinLoop(addresses, until).finally(() => this.#joining = undefined);
    return this.#joining;
  }

  /** Asks each address in turn until one adds this node, or `until` (ms) passes. */
  async #joinLoop(addresses: string[], until = Infinity): Promise<void> {
    if (this.#store.appliedIndex() > 0 || !this.#storage.isEmpty()) {
      throw new Error(
        `cluster: cannot join: the store already holds state (index ${this.#store.appliedIndex()}) ` +
          `from outside a cluster; use an empty --data-dir`,
      );
    }
    const nonce = crypto.randomUUID();
    let backoff = 200;
    let logged = false;
    for (let attempt = 1; !this.#closed; attempt++) {
      const addr = addresses[(attempt - 1) % addresses.length]!;
      try {
        const ans = await this.#transport.request(
          addr,
          {
            t: "join",
            name: this.#o.node,
            address: this.#address,
            nonce,
          } satisfies Request,
          { timeoutMs: PROPOSAL_TIMEOUT_MS + 2000 },
        ) as JoinAnswer;
        if (
          typeof ans?.clusterId !== "string" || typeof ans.id !== "number" ||
          !Array.isArray(ans.members)
        ) {
          throw new Error("malformed join answer");
        }
        if (this.#identity !== undefined) return;
        for (const m of ans.members) this.#addresses.set(m.id, m.address);
        const identity: Identity = { clusterId: ans.clusterId, id: ans.id, nonce };
        this.#storage.setIdentity(identity);
        this.#identity = identity;
        this.#o.log(`cluster: joined cluster ${ans.clusterId} through ${addr} as id ${ans.id}`);
        this.#startNode(identity);
        return;
      } catch (e) {
        const msg = (e as Error).message;
        if (this.#o.now() + backoff >= until) {
          throw new Error(`cannot join through ${addresses.join(", ")}: ${msg}`);
        }
        if (!logged) {
          this.#o.log(`cluster: join through ${addr} failed (${msg}); retrying`);
          logged = true;
        }
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  #startNode(identity: Identity): void {
    // A crash between persisting a received snapshot and installing it in the store: the log
    // now starts after the snapshot, so the store must catch up from it before raft runs.
    const snap = this.#storage.snapshot();
    if (!isEmptySnapshot(snap) && snap.metadata.index > this.#store.appliedIndex()) {
      this.#store.restore(snap.data);
      this.#o.log(`cluster: restored the store from the snapshot at ${snap.metadata.index}`);
    }
    const node = new RawNode({
      id: identity.id,
      storage: this.#storage,
      electionTick: ELECTION_TICKS,
      heartbeatTick: HEARTBEAT_TICKS,
      random: this.#o.random,
      preVote: true,
      checkQuorum: true,
      maxUncommittedEntriesSize: UNCOMMITTED_BYTES_MAX,
      applied: this.#store.appliedIndex(),
    });
    this.#node = node;
    const cs = this.#store.confState();
    if (
      cs.voters.length > 0 && !cs.voters.includes(identity.id) && !cs.learners.includes(identity.id)
    ) {
      this.#o.log(
        `cluster: this member (id ${identity.id}) was removed from cluster ${identity.clusterId}; ` +
          `to join again, start with an empty --data-dir and --join`,
      );
    }
    // A lone voter need not wait an election timeout.
    const voters = cs.voters.length > 0 ? cs.voters : this.#storageVoters();
    if (voters.length === 1 && voters[0] === identity.id) node.campaign();
    this.#ticker = setInterval(() => this.#tick(), this.#o.tickMs);
    this.#schedule();
  }

  /** Voters named by the unapplied bootstrap entries (a fresh bootstrap before first apply). */
  #storageVoters(): number[] {
    try {
      const last = this.#storage.lastIndex();
      const ents = last >= 1
        ? this.#storage.entries(this.#storage.firstIndex(), last + 1, 1 << 20)
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
    const node = this.#node;
    if (node === undefined || this.#closed) return;
    node.tick();
    if (this.#role === "leader") {
      this.#checkLiveness();
      this.#maybePromote();
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    // setImmediate, not a microtask: it runs after every request and frame that this turn of
    // the event loop read, so they all go into one ready (one fsync) — group commit.
    setImmediate(() => {
      this.#scheduled = false;
      try {
        this.#process();
      } catch (e) {
        this.#fatal(e as Error);
      }
    });
  }

  /** A broken invariant or a failed disk write: stop this member rather than diverge. */
  #fatal(e: Error): void {
    this.#o.log(`cluster: fatal: ${e.stack ?? e.message}; this member stops taking part`);
    this.#closed = true;
    clearInterval(this.#ticker);
    this.#failAll(new Error(`cluster stopped: ${e.message}`));
    this.#o.onFatal(e);
  }

  #process(): void {
    const node = this.#node;
    if (node === undefined) return;
    while (node.hasReady()) {
      const rd = node.ready();
      if (rd.softState !== undefined) this.#onSoftState(rd.softState.lead, rd.softState.raftState);
      // 1. Persist: snapshot, entries and hard state in one synced transaction.
      this.#storage.persist({
        entries: rd.entries,
        hardState: rd.hardState,
        snapshot: rd.snapshot,
        sync: rd.mustSync,
      });
      // 2. Send.
      for (const m of rd.messages) this.#send(m);
      // 3. Apply.
      if (rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot)) {
        this.#store.restore(rd.snapshot.data);
        this.#o.log(`cluster: installed snapshot at index ${rd.snapshot.metadata.index}`);
      }
      this.#apply(node, rd);
      for (const rs of rd.readStates) {
        this.#pendingReads.push({ index: rs.index, key: hex(rs.requestCtx) });
      }
      node.advance();
    }
    this.#afterApply();
  }

  #onSoftState(lead: number, state: string): void {
    const was = this.#role;
    const self = this.#identity?.id ?? 0;
    const isLearner = this.#store.confState().learners.includes(self);
    this.#role = state === "leader"
      ? "leader"
      : state === "candidate" || state === "preCandidate"
      ? "candidate"
      : isLearner
      ? "learner"
      : "follower";
    if (lead !== this.#leader) {
      this.#leader = lead;
      if (lead !== 0) {
        const name = this.#memberName(lead);
        this.#o.log(`cluster: leader is ${name} (id ${lead})`);
        for (const w of this.#leaderWaiters.splice(0)) w.resolve();
      }
    }
    if (was === "leader" && this.#role !== "leader") {
      // Entries proposed here may be overwritten by the next leader: let propose() retry them
      // there at once (same request id, applied once) instead of waiting out the deadline.
      const lost = new Error("not the leader any more");
      for (const w of this.#proposals.values()) w.reject(lost);
      this.#proposals.clear();
    }
    if (this.#role === "leader" && was !== "leader") {
      this.#leaderSince = this.#o.now();
      // Every member gets a full node timeout of grace from a new leader.
      for (const id of this.#addresses.keys()) this.#heard.set(id, this.#leaderSince);
    }
  }

  #apply(node: RawNode, rd: Ready): void {
    if (rd.committedEntries.length === 0) return;
    const batch: ApplyEntry[] = [];
    for (const e of rd.committedEntries) {
      if (e.type === "confChange") {
        batch.push({ index: e.index, command: this.#applyConfChange(node, e) });
      } else if (e.data.byteLength === 0) {
        batch.push({ index: e.index, command: { type: "noop" } });
      } else {
        let p: Proposal | undefined;
        try {
          p = unpack(e.data) as Proposal;
        } catch {
          p = undefined;
        }
        // A malformed entry is applied as an invalid command: rejected the same way everywhere.
        // Membership changes only come from conf-change entries, never from a proposal.
        const c = p?.c as { type?: unknown; commands?: { type?: unknown }[] } | undefined;
        const smuggled = c?.type === "conf" ||
          (c?.type === "batch" && Array.isArray(c.commands) &&
            c.commands.some((x) => x?.type === "conf"));
        batch.push({
          index: e.index,
          command: smuggled ? null : p?.c ?? null,
          requestId: typeof p?.r === "string" ? p.r : undefined,
        });
      }
    }
    const results = this.#store.applyMany(batch);
    batch.forEach((b, i) => {
      if (b.requestId === undefined) return;
      const w = this.#proposals.get(b.requestId);
      if (w === undefined) return;
      this.#proposals.delete(b.requestId);
      w.resolve({ index: b.index, result: results[i]! });
    });
  }

  #applyConfChange(node: RawNode, e: Entry): Command {
    let cc: ConfChange;
    let cs: ConfState;
    try {
      cc = decodeConfChange(e.data);
      cs = node.applyConfChange(cc);
    } catch (err) {
      this.#o.log(`cluster: conf change at ${e.index} not applied: ${(err as Error).message}`);
      const cur = node.status().config;
      return { type: "conf", voters: cur.voters, learners: cur.learners };
    }
    const cmd: Command = { type: "conf", voters: [...cs.voters], learners: [...cs.learners] };
    if (cc.type === "removeNode") {
      cmd.remove = cc.nodeId;
      if (cc.nodeId === this.#identity?.id) {
        this.#o.log(`cluster: this member (id ${cc.nodeId}) was removed from the cluster`);
      }
    } else if (cc.context !== undefined) {
      try {
        const ctx = unpack(cc.context) as JoinContext;
        if (typeof ctx?.name === "string" && typeof ctx.address === "string") {
          cmd.upsert = {
            id: cc.nodeId,
            name: ctx.name,
            address: ctx.address,
            ...(typeof ctx.nonce === "string" ? { nonce: ctx.nonce } : {}),
          };
          this.#addresses.set(cc.nodeId, ctx.address);
        }
      } catch { /* a context we cannot read: membership still changes, name stays unknown */ }
      if (cmd.upsert !== undefined && cmd.upsert.name.length > JOIN_NAME_MAX) delete cmd.upsert;
    }
    return cmd;
  }

  #afterApply(): void {
    const applied = this.#store.appliedIndex();
    // Reads whose index is applied can be served now.
    if (this.#pendingReads.length > 0) {
      const still: { index: number; key: string }[] = [];
      for (const r of this.#pendingReads) {
        if (r.index <= applied) {
          const w = this.#reads.get(r.key);
          this.#reads.delete(r.key);
          w?.resolve(r.index);
        } else still.push(r);
      }
      this.#pendingReads = still;
    }
    if (this.#applyWaiters.length > 0) {
      const ready = this.#applyWaiters.filter((x) => x.index <= applied);
      this.#applyWaiters = this.#applyWaiters.filter((x) => x.index > applied);
      for (const x of ready) x.w.resolve(applied);
    }
    this.#maybeSnapshot(applied);
  }

  #maybeSnapshot(applied: number): void {
    const snapIndex = this.#storage.snapshot().metadata.index;
    if (applied - snapIndex < this.#o.snapshotEntries) return;
    if (applied > this.#storage.lastIndex()) return;
    const data = this.#store.snapshot();
    this.#storage.snapshotAndCompact(
      applied,
      this.#store.confState(),
      data,
      this.#o.snapshotKeepEntries,
    );
  }

  // ---------------------------------------------------------------- network

  #send(m: Message): void {
    const node = this.#node!;
    const addr = this.#addresses.get(m.to);
    if (addr === undefined) {
      node.reportUnreachable(m.to);
      if (m.type === "MsgSnap") node.reportSnapshot(m.to, "failure");
      return;
    }
    if (m.type === "MsgSnap" && m.snapshot !== undefined) {
      this.#sendSnapshot(addr, m);
      return;
    }
    if (!this.#transport.send(addr, { t: "raft", m })) node.reportUnreachable(m.to);
  }

  /** A snapshot travels as bounded chunks, then the MsgSnap without its data. */
  #sendSnapshot(addr: string, m: Message): void {
    const node = this.#node!;
    const snap = m.snapshot!;
    const key = crypto.randomUUID();
    const data = snap.data;
    let ok = true;
    let seq = 0;
    for (let off = 0; ok && off < data.byteLength; off += SNAPSHOT_CHUNK_BYTES, seq++) {
      ok = this.#transport.send(addr, {
        t: "snapChunk",
        key,
        seq,
        data: data.subarray(off, Math.min(off + SNAPSHOT_CHUNK_BYTES, data.byteLength)),
      });
    }
    const head: Message = { ...m, snapshot: { metadata: snap.metadata, data: new Uint8Array(0) } };
    ok = ok &&
      this.#transport.send(addr, {
        t: "raft",
        m: head,
        snap: key,
        snapChunks: seq,
        snapBytes: data.byteLength,
      });
    node.reportSnapshot(m.to, ok ? "finish" : "failure");
    if (!ok) node.reportUnreachable(m.to);
    else {
      this.#o.log(
        `cluster: sent snapshot at index ${snap.metadata.index} (${data.byteLength} bytes) ` +
          `to ${this.#memberName(m.to)}`,
      );
    }
  }

  #onMessage(from: Hello, body: unknown): void {
    const node = this.#node;
    if (node === undefined || this.#closed) return;
    if (typeof body !== "object" || body === null) return;
    const b = body as Record<string, unknown>;
    if (from.nodeId > 0) {
      this.#heard.set(from.nodeId, this.#o.now());
      if (!this.#addresses.has(from.nodeId)) this.#addresses.set(from.nodeId, from.address);
    }
    if (b.t === "snapChunk") {
      this.#onSnapshotChunk(from, b);
      return;
    }
    if (b.t !== "raft") return;
    let m: Message;
    try {
      m = validateMessage(b.m);
    } catch (e) {
      this.#o.log(
        `cluster: dropped a malformed raft message from ${from.address}: ${(e as Error).message}`,
      );
      return;
    }
    if (m.from !== from.nodeId || m.to !== this.#identity?.id) {
      this.#o.log(
        `cluster: dropped a raft message from ${from.address} with from/to ${m.from}/${m.to}`,
      );
      return;
    }
    if (m.type === "MsgSnap") {
      const data = this.#takeSnapshot(from, b);
      if (data === undefined || m.snapshot === undefined) return;
      m = { ...m, snapshot: { metadata: m.snapshot.metadata, data } };
    }
    if (m.from === this.#leader) this.#heard.set(0, this.#o.now());
    try {
      node.step(m);
    } catch (e) {
      if (e instanceof ProposalDroppedError) return;
      throw e;
    }
    this.#schedule();
  }

  /**
   * One chunk of a snapshot from the leader. Chunks must come in order (seq 0, 1, …); a gap, a
   * sender that is not the leader, or more than SNAPSHOT_BYTES_MAX drops the transfer, and raft
   * sends the snapshot again. One transfer at a time; an unfinished one is replaced.
   */
  #onSnapshotChunk(from: Hello, b: Record<string, unknown>): void {
    if (!(b.data instanceof Uint8Array) || typeof b.key !== "string" || typeof b.seq !== "number") {
      return;
    }
    if (from.nodeId !== this.#leader && this.#leader !== 0) return;
    let t = this.#snapTransfer;
    if (t === undefined || t.key !== b.key) {
      if (b.seq !== 0) return;
      t = { key: b.key, from: from.nodeId, parts: [], bytes: 0 };
      this.#snapTransfer = t;
    }
    if (b.seq !== t.parts.length || t.from !== from.nodeId) {
      this.#snapTransfer = undefined;
      this.#o.log(`cluster: dropped a snapshot transfer from ${from.address}: chunk out of order`);
      return;
    }
    t.bytes += b.data.byteLength;
    if (t.bytes > SNAPSHOT_BYTES_MAX) {
      this.#snapTransfer = undefined;
      this.#o.log(
        `cluster: dropped a snapshot from ${from.address}: over ${SNAPSHOT_BYTES_MAX} bytes`,
      );
      return;
    }
    t.parts.push(b.data);
  }

  /** The reassembled snapshot a MsgSnap announces, checked whole, or undefined (dropped). */
  #takeSnapshot(from: Hello, b: Record<string, unknown>): Uint8Array | undefined {
    const t = this.#snapTransfer;
    this.#snapTransfer = undefined;
    if (
      t === undefined || t.key !== b.snap || t.from !== from.nodeId ||
      t.parts.length !== b.snapChunks || t.bytes !== b.snapBytes
    ) {
      this.#o.log(`cluster: dropped an incomplete snapshot from ${from.address}`);
      return undefined;
    }
    const data = new Uint8Array(t.bytes);
    let off = 0;
    for (const p of t.parts) {
      data.set(p, off);
      off += p.byteLength;
    }
    try {
      checkSnapshot(data);
    } catch (e) {
      this.#o.log(`cluster: dropped a snapshot from ${from.address}: ${(e as Error).message}`);
      return undefined;
    }
    return data;
  }

  async #onRequest(from: Hello, body: unknown): Promise<unknown> {
    if (this.#closed) throw new Error("member is shutting down");
    const r = body as Request;
    const cluster = this.#identity?.clusterId;
    if (from.clusterId === "" && r?.t !== "join") throw new Error("join the cluster first");
    if (cluster !== undefined && from.clusterId !== "" && from.clusterId !== cluster) {
      throw new Error("foreign cluster");
    }
    switch (r?.t) {
      case "propose": {
        if (typeof r.id !== "string") throw new Error("malformed propose request");
        const cs = this.#store.confState();
        if (!cs.voters.includes(from.nodeId) && !cs.learners.includes(from.nodeId)) {
          throw new Error("proposals are taken from members only");
        }
        return await this.#proposeAsLeader(r.id, r.cmd);
      }
      case "join":
        if (
          typeof r.name !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(r.name) ||
          typeof r.address !== "string" || !/^[0-9a-fA-F.:[\]]{3,64}:\d{1,5}$/.test(r.address) ||
          typeof r.nonce !== "string" || r.nonce.length > 64
        ) {
          throw new Error("malformed join request");
        }
        return await this.#handleJoin(r);
      case "remove":
        if (typeof r.id !== "number") throw new Error("malformed remove request");
        await this.#removeAsLeader(r.id);
        return { ok: true };
      case "transfer":
        if (typeof r.to !== "number") throw new Error("malformed transfer request");
        await this.#transferAsLeader(r.to);
        return { ok: true };
      default:
        throw new Error("unknown request");
    }
  }

  // ---------------------------------------------------------------- proposals

  async propose(command: Command): Promise<Proposed> {
    const id = crypto.randomUUID();
    const deadline = this.#o.now() + PROPOSAL_TIMEOUT_MS;
    let lastError: Error | undefined;
    while (!this.#closed && this.#o.now() < deadline) {
      const leader = await this.#awaitLeader(deadline);
      try {
        if (leader === this.#identity!.id) {
          return await this.#proposeLocal(id, command, deadline);
        }
        const addr = this.#addresses.get(leader);
        if (addr === undefined) throw new Error(`no address for leader id ${leader}`);
        const res = await this.#transport.request(
          addr,
          { t: "propose", id, cmd: command } satisfies Request,
          { timeoutMs: Math.max(1, deadline - this.#o.now()) },
        ) as Proposed;
        if (typeof res?.index !== "number") throw new Error("malformed propose answer");
        // Read-your-writes on this member: resolve once the local replica has it too.
        await this.#awaitApplied(res.index, deadline);
        return res;
      } catch (e) {
        lastError = e as Error;
        if (e instanceof NoLeaderError) throw e;
        // Leader changed or unreachable: retry with the same request id (applied once).
        await sleep(50);
      }
    }
    if (this.#closed) throw new Error("cluster is closed");
    throw lastError !== undefined &&
        /not the leader|no address|connect|closed/.test(lastError.message)
      ? new NoLeaderError(lastError.message)
      : deadlineError("proposal");
  }

  /** On the leader: append the entry and wait until it is applied here. */
  #proposeAsLeader(id: string, command: Command): Promise<Proposed> {
    if (this.#role !== "leader") return Promise.reject(new Error("not the leader"));
    return this.#proposeLocal(id, command, this.#o.now() + PROPOSAL_TIMEOUT_MS);
  }

  #proposeLocal(id: string, command: Command, deadline: number): Promise<Proposed> {
    const node = this.#node!;
    if (this.#proposals.size >= PENDING_PROPOSALS_MAX) {
      return Promise.reject(new Error("too many proposals in flight; retry later"));
    }
    const data = pack({ r: id, c: command } satisfies Proposal);
    if (data.byteLength > PROPOSAL_BYTES_MAX) {
      return Promise.reject(
        new Error(`proposal of ${data.byteLength} bytes is over ${PROPOSAL_BYTES_MAX}`),
      );
    }
    const { promise, w } = withDeadline<Proposed>(
      deadline - this.#o.now(),
      () => deadlineError("proposal"),
      () => {
        if (this.#proposals.get(id) === w) this.#proposals.delete(id);
      },
    );
    try {
      node.propose(data);
    } catch (e) {
      w.reject(
        e instanceof ProposalDroppedError
          ? new Error(`not the leader or busy: ${e.message}`)
          : e as Error,
      );
      return promise;
    }
    // A retry of the same request id on this leader: the earlier caller gets "superseded" and
    // retries too; both end with the one entry's result.
    this.#proposals.get(id)?.reject(new Error("superseded by a retry"));
    this.#proposals.set(id, w);
    this.#schedule();
    return promise;
  }

  #awaitLeader(deadline: number): Promise<number> {
    if (this.#node === undefined) {
      return Promise.reject(new NoLeaderError(`${this.#o.node} is not a member of a cluster yet`));
    }
    if (this.#leader !== 0) return Promise.resolve(this.#leader);
    const { promise, w } = withDeadline<void>(
      deadline - this.#o.now(),
      () => new NoLeaderError("no leader elected"),
      () => this.#leaderWaiters = this.#leaderWaiters.filter((x) => x !== w),
    );
    this.#leaderWaiters.push(w);
    return promise.then(() => this.#leader);
  }

  #awaitApplied(index: number, deadline: number): Promise<number> {
    if (this.#store.appliedIndex() >= index) return Promise.resolve(this.#store.appliedIndex());
    const { promise, w } = withDeadline<number>(
      deadline - this.#o.now(),
      () => deadlineError(`waiting for index ${index} to apply`),
      () => this.#applyWaiters = this.#applyWaiters.filter((x) => x.w !== w),
    );
    this.#applyWaiters.push({ index, w });
    return promise;
  }

  /** ReadIndex (Raft §6.4): resolves once this replica has applied everything committed. */
  async readBarrier(): Promise<number> {
    const node = this.#node;
    const deadline = this.#o.now() + READ_TIMEOUT_MS;
    await this.#awaitLeader(deadline);
    const ctx = crypto.getRandomValues(new Uint8Array(16));
    const key = hex(ctx);
    const { promise, w } = withDeadline<number>(
      deadline - this.#o.now(),
      () => new NoLeaderError("read index timed out (no quorum?)"),
      () => this.#reads.delete(key),
    );
    this.#reads.set(key, w);
    node!.readIndex(ctx);
    this.#schedule();
    const index = await promise;
    return await this.#awaitApplied(index, deadline);
  }

  // ---------------------------------------------------------------- membership changes

  #handleJoin(r: Extract<Request, { t: "join" }>): Promise<JoinAnswer> {
    if (this.#node === undefined) {
      return Promise.reject(new Error("this member is not in a cluster"));
    }
    if (this.#role !== "leader") {
      const addr = this.#addresses.get(this.#leader);
      if (this.#leader === 0 || addr === undefined) {
        return Promise.reject(new Error("no leader to add the member; retry"));
      }
      return this.#transport.request(addr, r, { timeoutMs: PROPOSAL_TIMEOUT_MS }) as Promise<
        JoinAnswer
      >;
    }
    // One join at a time on the leader: ids are handed out in order, one conf change pending.
    return this.#oneAtATime(() => this.#joinAsLeader(r));
  }

  /**
   * Runs membership work on the leader one piece at a time (raft accepts one pending conf change;
   * join ids are handed out in order).
   */
  #oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#joinChain.then(fn);
    this.#joinChain = run.catch(() => {});
    return run;
  }

  async #joinAsLeader(r: Extract<Request, { t: "join" }>): Promise<JoinAnswer> {
    // Everything committed before this leader's term is applied first (ReadIndex), so the
    // member table and the highest id ever handed out are complete: no id is given twice.
    await this.readBarrier();
    const answer = (id: number): JoinAnswer => ({
      clusterId: this.#identity!.clusterId,
      id,
      members: this.#store.members().map(({ id, name, address }) => ({ id, name, address })),
    });
    const existing = this.#store.members().find((m) => m.name === r.name);
    if (existing !== undefined) {
      // The same joiner retrying (its token matches): the same id again.
      if (existing.nonce === r.nonce) return answer(existing.id);
      throw new Error(
        `a member named ${r.name} already exists (id ${existing.id}); remove it first with ` +
          `berth raft remove-peer ${r.name}`,
      );
    }
    const id = Math.max(this.#store.memberIdMax(), this.#lastIdHandedOut) + 1;
    this.#lastIdHandedOut = id;
    const ctx: JoinContext = { name: r.name, address: r.address, nonce: r.nonce };
    await this.#proposeConfChange({ type: "addLearner", nodeId: id, context: pack(ctx) });
    const added = this.#store.members().find((m) => m.id === id);
    if (added?.nonce !== r.nonce) {
      throw new Error(`member id ${id} went to another join; retry`);
    }
    this.#addresses.set(id, r.address);
    this.#o.log(`cluster: added ${r.name} (${r.address}) as learner id ${id}`);
    return answer(id);
  }

  /** Highest member id this leader proposed (ids are never reused, even if a proposal failed). */
  #lastIdHandedOut = 0;

  /** Proposes a conf change on the leader and waits until it is applied here. */
  async #proposeConfChange(cc: ConfChange): Promise<void> {
    const node = this.#node!;
    const deadline = this.#o.now() + PROPOSAL_TIMEOUT_MS;
    for (;;) {
      if (this.#role !== "leader") throw new Error("not the leader");
      try {
        node.proposeConfChange(cc);
        break;
      } catch (e) {
        if (!(e instanceof ProposalDroppedError)) throw e;
        // Another change is pending: wait for it to apply.
        if (this.#o.now() > deadline) throw deadlineError("membership change");
        await sleep(50);
      }
    }
    this.#schedule();
    const want = (cs: ConfState) => {
      const inVoters = cs.voters.includes(cc.nodeId);
      const inLearners = cs.learners.includes(cc.nodeId);
      return cc.type === "addNode"
        ? inVoters
        : cc.type === "addLearner"
        ? inLearners
        : !inVoters && !inLearners;
    };
    while (!want(this.#store.confState())) {
      if (this.#o.now() > deadline) throw deadlineError("membership change");
      if (this.#closed) throw new Error("cluster is closed");
      await sleep(20);
    }
  }

  async #removeAsLeader(id: number): Promise<void> {
    if (this.#role !== "leader") {
      const addr = this.#addresses.get(this.#leader);
      if (addr === undefined) throw new NoLeaderError("no leader to remove the member");
      await this.#transport.request(addr, { t: "remove", id } satisfies Request, {
        timeoutMs: PROPOSAL_TIMEOUT_MS,
      });
      return;
    }
    const cs = this.#store.confState();
    if (!cs.voters.includes(id) && !cs.learners.includes(id)) return;
    if (cs.voters.length === 1 && cs.voters[0] === id) {
      throw new Error("cannot remove the last voter");
    }
    const name = this.#store.members().find((m) => m.id === id)?.name;
    await this.#oneAtATime(() => this.#proposeConfChange({ type: "removeNode", nodeId: id }));
    this.#o.log(`cluster: removed member id ${id}`);
    if (name === undefined || id === this.#identity?.id) return;
    // A removed member's registrations go with it: nobody is left to deregister them.
    await this.propose({
      type: "batch",
      commands: [
        ...this.#store.instancesOfNode(name).map((i) => ({
          type: "deregister" as const,
          id: i.id,
        })),
        ...(this.#store.node(name)
          ? [{ type: "node.status" as const, name, status: "down" as const }]
          : []),
      ],
    });
  }

  async #transferAsLeader(to: number): Promise<void> {
    if (this.#role !== "leader") {
      const addr = this.#addresses.get(this.#leader);
      if (addr === undefined) throw new NoLeaderError("no leader to transfer from");
      await this.#transport.request(addr, { t: "transfer", to } satisfies Request, {
        timeoutMs: PROPOSAL_TIMEOUT_MS,
      });
      return;
    }
    if (to === this.#identity!.id) return;
    if (!this.#store.confState().voters.includes(to)) {
      throw new Error(`member id ${to} is not a voter`);
    }
    this.#node!.transferLeader(to);
    this.#schedule();
    const deadline = this.#o.now() + ELECTION_TICKS * this.#o.tickMs * 3;
    while (this.#leader !== to) {
      if (this.#o.now() > deadline) throw new Error("leadership transfer timed out");
      await sleep(20);
    }
  }

  /** Leadership to `name`, or to the voter with the longest log when null. */
  async transferLeader(name: string | null): Promise<void> {
    if (this.#node === undefined) throw new NoLeaderError("not a member of a cluster");
    let to: number;
    if (name === null) {
      const st = this.#node.status();
      const self = this.#identity!.id;
      // Only voters the leader hears from: a transfer to a dead member would just time out.
      const candidates = this.#store.confState().voters.filter((v) =>
        v !== self && st.progress?.get(v)?.recentActive !== false
      );
      if (candidates.length === 0) throw new Error("no other voter to transfer leadership to");
      to = candidates.sort((a, b) =>
        (st.progress?.get(b)?.match ?? 0) - (st.progress?.get(a)?.match ?? 0)
      )[0]!;
    } else {
      const m = this.#store.members().find((x) => x.name === name);
      if (m === undefined) throw new Error(`no member named ${name}`);
      to = m.id;
    }
    await this.#transferAsLeader(to);
  }

  /** Removes the member called `name` (gone for good). */
  async removePeer(name: string): Promise<void> {
    const m = this.#store.members().find((x) => x.name === name);
    if (m === undefined) throw new Error(`no member named ${name}`);
    await this.#removeAsLeader(m.id);
  }

  /** Leaves gracefully: hands leadership off first when leader, then asks to be removed. */
  async leave(): Promise<void> {
    const self = this.#identity?.id;
    if (self === undefined || this.#node === undefined) {
      throw new Error("not a member of a cluster");
    }
    const cs = this.#store.confState();
    if (this.#role === "leader" && cs.voters.length > 1) await this.transferLeader(null);
    await this.#removeAsLeader(self);
  }

  /** On the leader: promote caught-up learners until the cluster has enough voters. */
  #maybePromote(): void {
    if (this.#promoting) return;
    const cs = this.#store.confState();
    if (cs.voters.length >= this.#o.voters || cs.learners.length === 0) return;
    const st = this.#node!.status();
    const last = this.#storage.lastIndex();
    const now = this.#o.now();
    const ready = cs.learners.find((id) => {
      const pr = st.progress?.get(id);
      const heard = this.#heard.get(id) ?? 0;
      return pr !== undefined && pr.recentActive && pr.match > 0 &&
        pr.match + PROMOTE_LAG_ENTRIES >= last &&
        now - heard < ELECTION_TICKS * this.#o.tickMs;
    });
    if (ready === undefined) return;
    this.#promoting = true;
    this.#oneAtATime(() => this.#proposeConfChange({ type: "addNode", nodeId: ready })).then(
      () => this.#o.log(`cluster: promoted ${this.#memberName(ready)} (id ${ready}) to voter`),
      (e) => this.#o.log(`cluster: promoting id ${ready} failed: ${(e as Error).message}`),
    ).finally(() => this.#promoting = false);
  }

  /** On the leader: a member silent for longer than the node timeout has its node marked down. */
  #checkLiveness(): void {
    const now = this.#o.now();
    const self = this.#identity!.id;
    for (const m of this.#store.members()) {
      const silent = m.id === self ? 0 : now - (this.#heard.get(m.id) ?? this.#leaderSince);
      const node = this.#store.node(m.name);
      const want = silent > this.#o.nodeTimeoutMs ? "down" : "alive";
      if ((node?.status ?? "alive") === want || this.#liveness.has(m.name)) continue;
      this.#liveness.add(m.name);
      this.#o.log(
        want === "down"
          ? `cluster: no contact with ${m.name} for ${silent} ms; marking its instances critical`
          : `cluster: ${m.name} is back`,
      );
      // A member that went silent before registering its node gets a node record here, so
      // that registrations made on its behalf still leave DNS and the proxy.
      const register: Command[] = node === undefined
        ? [{
          type: "node.register",
          name: m.name,
          address: m.address.replace(/:\d+$/, ""),
          meta: {},
        }]
        : [];
      this.propose({
        type: "batch",
        commands: [...register, { type: "node.status", name: m.name, status: want }],
      })
        .catch((e) => this.#o.log(`cluster: liveness update for ${m.name} failed: ${e.message}`))
        .finally(() => this.#liveness.delete(m.name));
    }
  }

  // ---------------------------------------------------------------- status

  #refreshAddresses(): void {
    for (const m of this.#store.members()) {
      if (m.address !== "") this.#addresses.set(m.id, m.address);
    }
  }

  #memberName(id: number): string {
    return this.#store.members().find((m) => m.id === id)?.name ?? `id ${id}`;
  }

  /** This member's identity, once it is in a cluster. */
  identity(): Identity | undefined {
    return this.#identity;
  }

  status(): ClusterStatus {
    const hs = this.#storage.hardState();
    const leaderMember: Member | undefined = this.#store.members().find((m) =>
      m.id === this.#leader
    );
    return {
      leader: this.#leader === 0 ? null : (leaderMember?.name ?? `id ${this.#leader}`),
      leaderAddress: this.#leader === 0 ? null : (this.#addresses.get(this.#leader) ?? null),
      term: hs.term,
      commitIndex: hs.commit,
      appliedIndex: this.#store.appliedIndex(),
      role: this.#node === undefined ? "standalone" : this.#currentRole(),
      node: this.#o.node,
      lastContactMs: this.#role === "leader"
        ? 0
        : Math.max(0, this.#o.now() - (this.#heard.get(0) ?? 0)),
    };
  }

  members(): MemberStatus[] {
    const st = this.#node?.status();
    const now = this.#o.now();
    const self = this.#identity?.id;
    return this.#store.members().map((m) => {
      const heard = m.id === self ? now : this.#heard.get(m.id);
      const node = this.#store.node(m.name);
      const state: Role = m.id === this.#leader
        ? "leader"
        : m.role === "learner"
        ? "learner"
        : "follower";
      return {
        id: m.id,
        name: m.name,
        address: m.address,
        role: m.role,
        state: m.id === self ? this.#currentRole() : state,
        lastContactMs: heard === undefined ? null : now - heard,
        status: node?.status ?? "alive",
        ...(st?.progress?.get(m.id) ? { match: st.progress.get(m.id)!.match } : {}),
      };
    });
  }

  /** This member's role now: learner/follower follows the membership, not the last soft state. */
  #currentRole(): Role {
    if (this.#role === "leader" || this.#role === "candidate") return this.#role;
    const self = this.#identity?.id ?? 0;
    return this.#store.confState().learners.includes(self) ? "learner" : "follower";
  }

  #failAll(e: Error): void {
    for (const w of this.#proposals.values()) w.reject(e);
    this.#proposals.clear();
    for (const w of this.#reads.values()) w.reject(e);
    this.#reads.clear();
    for (const x of this.#applyWaiters) x.w.reject(e);
    this.#applyWaiters = [];
    for (const w of this.#leaderWaiters) w.reject(e);
    this.#leaderWaiters = [];
  }

  async close(): Promise<void> {
    if (this.#closed && this.#ticker === undefined) return;
    this.#closed = true;
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    this.#failAll(new Error("cluster is closed"));
    await this.#transport.close();
    this.#storage.close();
  }
}
