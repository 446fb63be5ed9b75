/**
 * Safety and convergence checkers for the simulator. They only observe (node state after each
 * step, what was persisted, applied and read) and never inject faults; a violation is recorded
 * as a message and stops the run.
 *
 * Checked: Election Safety (≤ 1 leader per term), Log Matching, Leader Completeness, State
 * Machine Safety (identical applied prefixes, contiguous apply), commit index monotonic per node
 * (in memory and on disk across crashes), committed entries never change, ReadIndex reads see
 * every write acknowledged before they began, and after healing every acknowledged write is
 * applied on every member.
 *
 * @module
 */
import { ctxKey } from "../read_only.ts";
import type { Entry, HardState, NodeId, ReadState, Snapshot } from "../types.ts";
import type { NodeObserver, SimNode } from "./node.ts";

function entryKey(e: Entry): string {
  return `${e.type}:${ctxKey(e.data)}`;
}

/** All invariants of one run. */
export class Checkers implements NodeObserver {
  readonly violations: string[] = [];
  step = 0;
  readonly #leaderOfTerm = new Map<number, NodeId>();
  /** "index:term" → entry key and the term of the entry before it (Log Matching). */
  readonly #logEntries = new Map<string, { key: string; prevTerm: number }>();
  /** index → what was applied there first (State Machine Safety). */
  readonly #applied = new Map<number, { term: number; key: string }>();
  /** index → term of the entry a leader committed there. */
  readonly #committed = new Map<number, number>();
  /** term → highest index a leader of that term committed. */
  readonly #commitByTerm = new Map<number, number>();
  /** "id:term" → leader log prefix already verified complete. */
  readonly #leaderVerified = new Map<string, number>();
  readonly #memCommit = new Map<string, number>();
  readonly #diskCommit = new Map<NodeId, number>();
  /** Pending ReadIndex ctx → highest acknowledged write index when the read began. */
  readonly #reads = new Map<string, number>();
  /** Highest index applied by any node (every applied write counts as acknowledged). */
  maxAcked = 0;
  readsServed = 0;
  writesAcked = 0;

  violation(what: string): void {
    this.violations.push(`step ${this.step}: ${what}`);
  }

  onPersist(node: SimNode, entries: readonly Entry[], hs: HardState | undefined): void {
    for (const e of entries) {
      let prevTerm = -1;
      try {
        prevTerm = node.disk.term(e.index - 1);
      } catch {
        // Compacted: the prefix is covered by a snapshot; skip the chain link.
      }
      const k = `${e.index}:${e.term}`;
      const had = this.#logEntries.get(k);
      const key = entryKey(e);
      if (had === undefined) {
        this.#logEntries.set(k, { key, prevTerm });
      } else if (
        had.key !== key || (prevTerm !== -1 && had.prevTerm !== -1 && had.prevTerm !== prevTerm)
      ) {
        this.violation(
          `log matching: node ${node.id} has (${e.index},${e.term}) = ${key}/prev ${prevTerm}, ` +
            `another log has ${had.key}/prev ${had.prevTerm}`,
        );
      } else if (had.prevTerm === -1) {
        had.prevTerm = prevTerm;
      }
    }
    if (hs !== undefined) {
      const before = this.#diskCommit.get(node.id) ?? 0;
      if (hs.commit < before) {
        this.violation(`node ${node.id}: persisted commit went back ${before} -> ${hs.commit}`);
      }
      this.#diskCommit.set(node.id, Math.max(before, hs.commit));
    }
  }

  onApply(node: SimNode, e: Entry): void {
    const key = entryKey(e);
    const had = this.#applied.get(e.index);
    if (had === undefined) {
      this.#applied.set(e.index, { term: e.term, key });
      if (e.index > this.maxAcked) this.maxAcked = e.index;
      if (e.type === "normal" && e.data.byteLength > 0) this.writesAcked++;
    } else if (had.term !== e.term || had.key !== key) {
      this.violation(
        `state machine safety: node ${node.id} applied (${e.index},${e.term},${key}), ` +
          `another node applied (${e.index},${had.term},${had.key})`,
      );
    }
    const ct = this.#committed.get(e.index);
    if (ct !== undefined && ct !== e.term) {
      this.violation(`node ${node.id} applied (${e.index},${e.term}) but term ${ct} was committed`);
    }
  }

  onSnapshotApplied(node: SimNode, s: Snapshot): void {
    const had = this.#applied.get(s.metadata.index);
    if (had !== undefined && had.term !== s.metadata.term) {
      this.violation(
        `node ${node.id}: snapshot (${s.metadata.index},${s.metadata.term}) disagrees with applied term ${had.term}`,
      );
    }
  }

  /** Records the start of a ReadIndex request. */
  onReadStart(ctx: Uint8Array): void {
    this.#reads.set(ctxKey(ctx), this.maxAcked);
  }

  onReadState(node: SimNode, rs: ReadState): void {
    const w = this.#reads.get(ctxKey(rs.requestCtx));
    if (w === undefined) return; // Started in an earlier incarnation's ctx space: unknown.
    this.readsServed++;
    if (rs.index < w) {
      this.violation(
        `linearizability: node ${node.id} read at index ${rs.index}, but write ${w} was acknowledged before the read began`,
      );
    }
  }

  /** Per-step checks over every running node. */
  checkStep(nodes: readonly SimNode[]): void {
    for (const n of nodes) {
      const raw = n.raw;
      if (raw === undefined) continue;
      const r = raw.raft;
      const mk = `${n.id}:${n.incarnation}`;
      const prev = this.#memCommit.get(mk);
      const disk = this.#diskCommit.get(n.id) ?? 0;
      if (prev === undefined && r.raftLog.committed < disk) {
        this.violation(
          `node ${n.id} restarted with commit ${r.raftLog.committed} < persisted ${disk}`,
        );
      }
      if (prev !== undefined && r.raftLog.committed < prev) {
        this.violation(`node ${n.id}: commit went back ${prev} -> ${r.raftLog.committed}`);
      }
      this.#memCommit.set(mk, r.raftLog.committed);
      if (r.state !== "leader") continue;
      // Election Safety.
      const lead = this.#leaderOfTerm.get(r.term);
      if (lead === undefined) this.#leaderOfTerm.set(r.term, n.id);
      else if (lead !== n.id) {
        this.violation(`election safety: nodes ${lead} and ${n.id} both lead term ${r.term}`);
      }
      this.#recordCommits(n);
      this.#checkLeaderCompleteness(n);
    }
  }

  #recordCommits(n: SimNode): void {
    const r = (n.raw as NonNullable<SimNode["raw"]>).raft;
    const lk = `c${n.id}:${r.term}`;
    const from = (this.#leaderVerified.get(lk) ?? r.raftLog.firstIndex() - 1) + 1;
    for (let i = from; i <= r.raftLog.committed; i++) {
      const t = r.raftLog.termOrZero(i);
      if (t === 0) continue;
      const had = this.#committed.get(i);
      if (had === undefined) this.#committed.set(i, t);
      else if (had !== t) {
        this.violation(`committed entry ${i} changed term ${had} -> ${t} (leader ${n.id})`);
      }
      const app = this.#applied.get(i);
      if (app !== undefined && app.term !== t) {
        this.violation(`leader ${n.id} committed (${i},${t}) but (${i},${app.term}) was applied`);
      }
    }
    this.#leaderVerified.set(lk, Math.max(from - 1, r.raftLog.committed));
    const c = this.#commitByTerm.get(r.term) ?? 0;
    if (r.raftLog.committed > c) this.#commitByTerm.set(r.term, r.raftLog.committed);
  }

  /** Raft §5.4: a leader of term T holds every entry committed in a term < T. */
  #checkLeaderCompleteness(n: SimNode): void {
    const r = (n.raw as NonNullable<SimNode["raw"]>).raft;
    let upTo = 0;
    for (const [t, c] of this.#commitByTerm) if (t < r.term && c > upTo) upTo = c;
    const lk = `l${n.id}:${r.term}`;
    const first = r.raftLog.firstIndex();
    const from = Math.max(this.#leaderVerified.get(lk) ?? 0, first - 1) + 1;
    if (upTo > r.raftLog.lastIndex()) {
      this.violation(
        `leader completeness: leader ${n.id} of term ${r.term} ends at ${r.raftLog.lastIndex()}, ` +
          `entries up to ${upTo} were committed in earlier terms`,
      );
      return;
    }
    for (let i = from; i <= upTo; i++) {
      const want = this.#committed.get(i);
      const got = r.raftLog.termOrZero(i);
      if (want !== undefined && got !== 0 && got !== want) {
        this.violation(
          `leader completeness: leader ${n.id} of term ${r.term} has term ${got} at ${i}, committed ${want}`,
        );
        return;
      }
    }
    if (upTo >= from) this.#leaderVerified.set(lk, upTo);
  }

  /** After healing: every member is up and has applied every acknowledged write. */
  checkConverged(members: readonly SimNode[]): void {
    for (const n of members) {
      if (!n.up) {
        this.violation(`convergence: member ${n.id} is down after healing`);
      } else if (n.appliedIndex < this.maxAcked) {
        this.violation(
          `convergence: member ${n.id} applied up to ${n.appliedIndex} < acknowledged ${this.maxAcked} after healing`,
        );
      }
    }
  }
}
