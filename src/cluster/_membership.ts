/**
 * Membership changes on a running cluster: removing a member (`removePeer`, `leave`), handing
 * leadership over (`transferLeader`), and the leader promoting caught-up learners to voters until
 * the cluster has `voters` of them. Joining is in _join.ts; both propose their conf changes
 * through `proposeConfChange`, one at a time (`oneAtATime`).
 *
 * A request made on a follower is forwarded to the leader; each change resolves once it is
 * visible in this member's applied membership (a state future, never a poll).
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import { type ConfChange, type ConfState, ProposalDroppedError } from "../../raft/mod.ts";
import { type ClusterCore, ELECTION_TICKS } from "./_core.ts";
import {
  BusyError,
  deadlineError,
  NoLeaderError,
  NotLeaderError,
  RejectedError,
  TimeoutError,
  UnknownMemberError,
} from "./errors.ts";
import { PROPOSAL_TIMEOUT_MS } from "./_proposals.ts";
import { forward } from "./_requests.ts";

/** A learner within this many entries of the leader's log counts as caught up. */
export const PROMOTE_LAG_ENTRIES = 64;

export class Membership {
  readonly #c: ClusterCore;
  #chain: Promise<unknown> = Promise.resolve();
  #promoting = false;

  constructor(core: ClusterCore) {
    this.#c = core;
  }

  /**
   * Runs membership work on the leader one piece at a time (raft accepts one pending conf
   * change; join ids are handed out in order).
   */
  oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn);
    this.#chain = run.catch(() => {});
    return run;
  }

  /** Proposes a conf change on the leader and resolves once it is applied here. */
  async proposeConfChange(cc: ConfChange): Promise<void> {
    const c = this.#c;
    const node = c.node!;
    const deadline = c.o.now() + PROPOSAL_TIMEOUT_MS;
    const timeout = () => deadlineError("membership change");
    for (;;) {
      if (c.role !== "leader") throw new NotLeaderError("not the leader");
      try {
        node.proposeConfChange(cc);
        break;
      } catch (e) {
        if (!(e instanceof ProposalDroppedError)) throw e;
        // Raft takes one change at a time and none during a leadership transfer: wait until
        // the pending change is applied and no transfer is under way.
        const settled = () =>
          c.store.appliedIndex() >= node.raft.pendingConfIndex && node.raft.leadTransferee === 0;
        if (settled()) throw new BusyError(`membership change refused: ${e.message}`);
        await c.until(() => c.role !== "leader" || settled(), { deadline, timeout });
      }
    }
    c.schedule();
    const want = (cs: ConfState) => {
      const inVoters = cs.voters.includes(cc.nodeId);
      const inLearners = cs.learners.includes(cc.nodeId);
      return cc.type === "addNode"
        ? inVoters
        : cc.type === "addLearner"
        ? inLearners
        : !inVoters && !inLearners;
    };
    // Applied here, or this member stopped leading first: then the change is in the log and
    // may still commit under the next leader — say so at once instead of waiting it out.
    const applied = () => want(c.store.confState());
    await c.until(() => applied() || c.role !== "leader", { deadline, timeout });
    if (!applied()) {
      throw new TimeoutError(
        "leadership lost while the membership change was pending; it may or may not have " +
          "taken effect",
      );
    }
  }

  /** Removes member `id` (on the leader, or forwarded to it). */
  async remove(id: number): Promise<void> {
    const c = this.#c;
    if (c.role !== "leader") {
      await forward(c, {
        body: { t: "remove", id },
        timeoutMs: PROPOSAL_TIMEOUT_MS,
        what: "remove the member",
      });
      return;
    }
    const name = c.store.members().find((m) => m.id === id)?.name;
    const addr = c.addresses.get(id);
    // Checked inside the queue: two removals asked at once must not both pass the check.
    const done = await this.oneAtATime(async () => {
      const cs = c.store.confState();
      if (!cs.voters.includes(id) && !cs.learners.includes(id)) return false;
      if (cs.voters.length === 1 && cs.voters[0] === id) {
        throw new RejectedError("cannot remove the last voter");
      }
      await this.proposeConfChange({ type: "removeNode", nodeId: id });
      return true;
    });
    if (!done) return;
    c.o.log(`cluster: removed ${name ?? `member id ${id}`}`);
    // Tell it (best effort): a removed member that still runs stops instead of serving stale data.
    if (addr !== undefined && id !== c.self) c.transport.send(addr, { t: "removed", id });
    // Its registrations go with it: the leader's liveness check deregisters the instances of
    // every removed member (_liveness.ts), however this removal ends.
  }

  /** Hands leadership to voter `to` (on the leader, or forwarded to it). */
  async transfer(to: number): Promise<void> {
    const c = this.#c;
    if (c.role !== "leader") {
      await forward(c, {
        body: { t: "transfer", to },
        timeoutMs: PROPOSAL_TIMEOUT_MS,
        what: "transfer from",
      });
      return;
    }
    if (to === c.self) return;
    if (!c.store.confState().voters.includes(to)) {
      throw new RejectedError(`${c.memberName(to)} is not a voter; only voters can lead`);
    }
    c.node!.transferLeader(to);
    c.schedule();
    await c.until(() => c.leader === to, {
      deadline: c.o.now() + ELECTION_TICKS * c.o.tickMs * 3,
      timeout: () => new TimeoutError("leadership transfer timed out"),
    });
  }

  /** Leadership to `name`, or to the voter with the longest log when null. */
  async transferLeader(name: string | null): Promise<void> {
    const c = this.#c;
    if (c.node === undefined) throw new NoLeaderError("not a member of a cluster");
    let to: number;
    if (name === null) {
      const st = c.node.status();
      // Only voters the leader hears from: a transfer to a dead member would just time out.
      const candidates = c.store.confState().voters.filter((v) =>
        v !== c.self && st.progress?.get(v)?.recentActive !== false
      );
      if (candidates.length === 0) {
        throw new RejectedError("no other voter to transfer leadership to");
      }
      to = candidates.sort((a, b) =>
        (st.progress?.get(b)?.match ?? 0) - (st.progress?.get(a)?.match ?? 0)
      )[0]!;
    } else {
      to = this.#memberId(name);
    }
    await this.transfer(to);
  }

  /** Removes the member called `name` (gone for good). */
  async removePeer(name: string): Promise<void> {
    await this.remove(this.#memberId(name));
  }

  /** Leaves gracefully: hands leadership off first when leader, then asks to be removed. */
  async leave(): Promise<void> {
    const c = this.#c;
    if (c.identity === undefined || c.node === undefined) {
      throw new RejectedError("not a member of a cluster");
    }
    const cs = c.store.confState();
    c.leaving = true;
    try {
      if (c.role === "leader" && cs.voters.length > 1) await this.transferLeader(null);
      await this.remove(c.self);
    } catch (e) {
      c.leaving = false;
      throw e;
    }
  }

  #memberId(name: string): number {
    const members = this.#c.store.members();
    const m = members.find((x) => x.name === name);
    if (m === undefined) throw UnknownMemberError.of(name, members.map((x) => x.name));
    return m.id;
  }

  /** On the leader, each tick: promote a caught-up learner while voters are too few. */
  maybePromote(): void {
    const c = this.#c;
    if (this.#promoting) return;
    const cs = c.store.confState();
    if (cs.voters.length >= c.o.voters || cs.learners.length === 0) return;
    const st = c.node!.status();
    const last = c.storage.lastIndex();
    const now = c.o.now();
    const ready = cs.learners.find((id) => {
      const pr = st.progress?.get(id);
      const heard = c.heard.get(id) ?? 0;
      return pr !== undefined && pr.recentActive && pr.match > 0 &&
        pr.match + PROMOTE_LAG_ENTRIES >= last &&
        now - heard < ELECTION_TICKS * c.o.tickMs;
    });
    if (ready === undefined) return;
    this.#promoting = true;
    this.oneAtATime(() => this.proposeConfChange({ type: "addNode", nodeId: ready })).then(
      () => c.o.log(`cluster: promoted ${c.memberName(ready)} (id ${ready}) to voter`),
      (e) => c.o.log(`cluster: promoting ${c.memberName(ready)} failed: ${errorText(e)}`),
    ).finally(() => this.#promoting = false);
  }
}
