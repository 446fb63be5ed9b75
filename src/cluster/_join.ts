/**
 * How a node comes into a cluster, from both sides.
 *
 * The joiner: `--bootstrap` starts a cluster whose first entry adds this node as id 1; `--join`
 * (or `berth join`) asks any member to add it, retried with backoff until one answers. The answer
 * carries the cluster id, the new member id and the members' addresses; the node then starts raft
 * and catches up as a learner.
 *
 * The leader: a join asked of a follower is forwarded to the leader; the leader hands out the next
 * member id (ids are never reused) and proposes the new member as a learner, one join at a time.
 * The same joiner retrying (same nonce) gets the same id back.
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import { type ConfChange, encodeConfChange, type Entry } from "../../raft/mod.ts";
import type { Command } from "../store/mod.ts";
import { encodeJoinContext, encodeProposal, type JoinContext } from "./_apply.ts";
import type { ClusterCore } from "./_core.ts";
import { BusyError, ClosedError, NoLeaderError, RejectedError, TimeoutError } from "./errors.ts";
import type { Membership } from "./_membership.ts";
import { PROPOSAL_TIMEOUT_MS, type Proposals } from "./_proposals.ts";
import {
  forward,
  isJoinAnswer,
  type JoinAnswer,
  type JoinRequest,
  nodeCommands,
  type NodeRecord,
  request,
} from "./_requests.ts";
import type { Identity } from "./raft_storage.ts";
import { TransportError } from "./transport.ts";

/** Longest `berth join` keeps asking (retrying while the cluster elects a leader). */
export const JOIN_TIMEOUT_MS = 15_000;
/** Backoff between join attempts: doubles from the first to the last. */
export const JOIN_BACKOFF_MS_MIN = 200;
export const JOIN_BACKOFF_MS_MAX = 2000;

export class Join {
  readonly #c: ClusterCore;
  readonly #membership: Membership;
  readonly #proposals: Proposals;
  #joining: Promise<void> | undefined;
  /** Whether refreshNode() is proposing this node's record. */
  #refreshing = false;
  /** A change came while a refresh was in flight: look again once it ends. */
  #recheck = false;
  /** Highest member id this leader proposed (ids are never reused, even if a proposal failed). */
  #lastIdHandedOut = 0;

  constructor(core: ClusterCore, membership: Membership, proposals: Proposals) {
    this.#c = core;
    this.#membership = membership;
    this.#proposals = proposals;
  }

  /** This node's catalog record, when the cluster registers it (`nodeMeta` given). */
  #nodeRecord(): NodeRecord | undefined {
    const meta = this.#c.o.nodeMeta;
    return meta === undefined ? undefined : { address: this.#c.o.advertise, meta };
  }

  // ---------------------------------------------------------------- the joiner

  /**
   * Starts a new cluster `clusterId` with this node as its only voter (id 1); `extra` commands
   * (the cluster CA and this member's certificate, with TLS) apply with its first entries.
   */
  async bootstrap(clusterId: string, extra: Command[] = []): Promise<void> {
    const c = this.#c;
    if (c.store.appliedIndex() > 0) {
      throw new Error(
        `cluster: cannot bootstrap: the store already holds state (index ` +
          `${c.store.appliedIndex()}) but no cluster identity; use an empty --data-dir`,
      );
    }
    const identity: Identity = {
      clusterId,
      id: 1,
      nonce: crypto.randomUUID(),
    };
    const ctx: JoinContext = { name: c.o.node, address: c.address, nonce: identity.nonce };
    const cc: ConfChange = { type: "addNode", nodeId: 1, context: encodeJoinContext(ctx) };
    const entries: Entry[] = [
      { term: 1, index: 1, type: "confChange", data: encodeConfChange(cc) },
    ];
    // The node's catalog record comes right after: applied in the same batch as the member.
    const node = this.#nodeRecord();
    const commands = [
      ...extra,
      ...(c.o.bootstrapCommands?.() ?? []),
      ...(node === undefined ? [] : nodeCommands(c.o.node, node)),
    ];
    if (commands.length > 0) {
      const c2: Command = { type: "batch", commands };
      const data = encodeProposal({ r: crypto.randomUUID(), c: c2 });
      entries.push({ term: 1, index: 2, type: "normal", data });
    }
    await c.storage.bootstrap(entries, { term: 1, vote: 0, commit: entries.length }, identity);
    c.identity = identity;
    c.o.log(`cluster: bootstrapped cluster ${identity.clusterId} with ${c.o.node} as id 1`);
    await c.startNode(identity);
  }

  /**
   * `--join`: keeps asking in the background until a member adds this node, a refusal that
   * cannot change ends it, or it closes.
   */
  joinInBackground(addresses: string[], before?: () => Promise<void>): void {
    this.#track(this.#joinLoop(addresses, Infinity, before))
      .catch((e) => this.#c.o.log(`cluster: ${errorText(e)}`));
  }

  /**
   * `berth join`: asks the members at `addresses` to add this node, for JOIN_TIMEOUT_MS. While
   * another join is under way (`--join`, or a `berth join` not answered yet) it is refused at once
   * with a BusyError instead of waiting on a loop that asks other addresses.
   */
  join(addresses: string[], before?: () => Promise<void>): Promise<void> {
    const c = this.#c;
    if (c.identity !== undefined) {
      return Promise.reject(
        new RejectedError(
          `already a member of cluster ${c.identity.clusterId} (id ${c.identity.id}); ` +
            `to join another cluster, start with an empty --data-dir`,
        ),
      );
    }
    if (this.#joining !== undefined) {
      return Promise.reject(
        new BusyError("a join is under way; wait for it to end (see the agent's log)"),
      );
    }
    return this.#track(this.#joinLoop(addresses, c.o.now() + JOIN_TIMEOUT_MS, before));
  }

  /** Marks `loop` as the join under way until it ends, whatever its outcome. */
  #track(loop: Promise<void>): Promise<void> {
    const joining = loop.finally(() => {
      if (this.#joining === joining) this.#joining = undefined;
    });
    this.#joining = joining;
    return joining;
  }

  /**
   * Asks each address in turn until one adds this node, or `until` (ms) passes; `before` runs
   * first (with TLS: enrollment, then the transport starts).
   */
  async #joinLoop(
    addresses: string[],
    until = Infinity,
    before?: () => Promise<void>,
  ): Promise<void> {
    const c = this.#c;
    if (c.store.appliedIndex() > 0 || !c.storage.isEmpty()) {
      throw new RejectedError(
        `cannot join: the store already holds state (index ${c.store.appliedIndex()}) ` +
          `from outside a cluster; use an empty --data-dir`,
      );
    }
    await before?.();
    const nonce = crypto.randomUUID();
    const node = this.#nodeRecord();
    let backoff = JOIN_BACKOFF_MS_MIN;
    let logged = false;
    for (let attempt = 1; !c.closed; attempt++) {
      const addr = addresses[(attempt - 1) % addresses.length]!;
      try {
        const ans = await request(c, {
          addr,
          body: {
            t: "join",
            name: c.o.node,
            address: c.address,
            nonce,
            ...(node === undefined ? {} : { node }),
          },
          timeoutMs: PROPOSAL_TIMEOUT_MS + 2000,
        });
        if (!isJoinAnswer(ans)) throw new Error("malformed join answer");
        if (c.identity !== undefined) return;
        for (const m of ans.members) c.addresses.set(m.id, m.address);
        const identity: Identity = { clusterId: ans.clusterId, id: ans.id, nonce };
        await c.storage.setIdentity(identity);
        c.identity = identity;
        c.o.log(`cluster: joined cluster ${ans.clusterId} through ${addr} as id ${ans.id}`);
        await c.startNode(identity);
        return;
      } catch (e) {
        const msg = errorText(e);
        // A refusal that cannot change (name taken, malformed) ends at once; anything else
        // (no leader yet, a member that is itself still joining, unreachable) is asked again,
        // of the next address.
        if (e instanceof RejectedError) {
          throw new RejectedError(`cannot join through ${addr}: ${msg}`);
        }
        if (c.o.now() + backoff >= until) {
          throw new TimeoutError(`cannot join through ${addresses.join(", ")}: ${msg}`);
        }
        // An address that cannot be reached the transport has logged itself.
        const unreachable = e instanceof NoLeaderError && e.cause instanceof TransportError;
        if (!logged && !unreachable) {
          c.o.log(`cluster: join through ${addr} failed (${msg}); retrying`);
          logged = true;
        }
        await c.pause(backoff);
        backoff = Math.min(backoff * 2, JOIN_BACKOFF_MS_MAX);
      }
    }
  }

  /**
   * On a restart: brings this node's catalog record up to date (its meta, such as the version,
   * may have changed) and marks it alive. Each attempt waits for a leader up to the proposal
   * timeout; attempts go on until one commits, is refused, or the member stops.
   */
  refreshNode(): void {
    const c = this.#c;
    const node = this.#nodeRecord();
    if (node === undefined) return;
    if (this.#refreshing) {
      // The record may be overwritten after the proposal in flight commits (the leader's
      // liveness check putting back a bare one): that change must not be lost.
      this.#recheck = true;
      return;
    }
    const have = c.store.node(c.o.node);
    if (have?.status === "alive" && this.#sameRecord(node)) return;
    const commands = nodeCommands(c.o.node, node);
    this.#refreshing = true;
    (async () => {
      while (!c.closed) {
        try {
          await this.#proposals.propose({ type: "batch", commands });
          return;
        } catch (e) {
          if (e instanceof RejectedError || e instanceof ClosedError) {
            if (!c.closed) c.o.log(`cluster: cannot update node ${c.o.node}: ${errorText(e)}`);
            return;
          }
        }
      }
    })().finally(() => {
      this.#refreshing = false;
      if (this.#recheck) {
        this.#recheck = false;
        if (!c.closed) this.refreshNode();
      }
    });
  }

  /**
   * Keeps this node's catalog record as this member has it: when an applied change left it
   * missing or different (a restore from another cluster or an older backup drops or rewrites
   * node rows; the leader's liveness check puts back a bare one), it is proposed again.
   */
  watchNode(): void {
    const c = this.#c;
    const node = this.#nodeRecord();
    if (node === undefined) return;
    c.store.subscribe((change) => {
      if (c.closed || c.node === undefined || !change.tables.has("nodes")) return;
      if (!this.#sameRecord(node)) this.refreshNode();
    });
  }

  /** Whether the store's record of this node has `node`'s address and meta. */
  #sameRecord(node: NodeRecord): boolean {
    const have = this.#c.store.node(this.#c.o.node);
    return have !== undefined && have.address === node.address &&
      JSON.stringify(have.meta) === JSON.stringify(node.meta);
  }

  // ---------------------------------------------------------------- the leader's side

  /** A join request: forwarded to the leader, or handled here when this member leads. */
  handle(r: JoinRequest): Promise<JoinAnswer> {
    const c = this.#c;
    if (c.node === undefined) {
      // Retryable: a peer started with the same --join list may be still joining itself.
      return Promise.reject(new NoLeaderError("this member is not in a cluster (yet)"));
    }
    if (c.role !== "leader") {
      return forward(c, {
        body: r,
        timeoutMs: PROPOSAL_TIMEOUT_MS,
        what: "add the member; retry",
      }) as Promise<JoinAnswer>;
    }
    // One join at a time on the leader: ids are handed out in order, one conf change pending.
    return this.#membership.oneAtATime(() => this.#joinAsLeader(r));
  }

  async #joinAsLeader(r: JoinRequest): Promise<JoinAnswer> {
    const c = this.#c;
    // Everything committed before this leader's term is applied first (ReadIndex), so the
    // member table and the highest id ever handed out are complete: no id is given twice.
    await this.#proposals.readBarrier();
    const answer = (id: number): JoinAnswer => ({
      clusterId: c.identity!.clusterId,
      id,
      members: c.store.members().map(({ id, name, address }) => ({ id, name, address })),
    });
    const existing = c.store.members().find((m) => m.name === r.name);
    if (existing !== undefined) {
      // The same joiner retrying (its token matches): the same id again.
      if (existing.nonce === r.nonce) return answer(existing.id);
      throw new RejectedError(
        `a member named ${r.name} already exists (id ${existing.id}); remove it first with ` +
          `berth raft remove-peer ${r.name}`,
      );
    }
    const id = Math.max(c.store.memberIdMax(), this.#lastIdHandedOut) + 1;
    this.#lastIdHandedOut = id;
    if (r.node !== undefined) {
      // The node's catalog record is committed before the member is added, so no member lists
      // it (or takes its registrations) while the catalog lacks its node.
      const p = await this.#proposals.propose({
        type: "batch",
        commands: nodeCommands(r.name, r.node),
      });
      if (!p.result.ok) {
        throw new RejectedError(`cannot register node ${r.name}: ${p.result.error}`);
      }
    }
    const ctx: JoinContext = { name: r.name, address: r.address, nonce: r.nonce };
    await this.#membership.proposeConfChange({
      type: "addLearner",
      nodeId: id,
      context: encodeJoinContext(ctx),
    });
    const added = c.store.members().find((m) => m.id === id);
    if (added?.nonce !== r.nonce) {
      throw new Error(`member id ${id} went to another join; retry`);
    }
    c.addresses.set(id, r.address);
    c.o.log(`cluster: added ${r.name} (${r.address}) as learner id ${id}`);
    return answer(id);
  }
}
