/**
 * Proposals and reads: `propose()` from any member (forwarded to the leader), the leader's side
 * of a forwarded proposal, and `readBarrier()` (ReadIndex).
 *
 * Every proposal carries a request id; the store applies a retried id once, so a proposal is
 * retried with the same id when the leader changes or cannot be reached, and both attempts end
 * with the one entry's result. The proposer resolves once its own replica has applied the entry
 * (a client reads its own write from any member). Each call is a future: the entry's apply
 * resolves it (`applied()`), the loop's state changes wake a retry, a deadline ends it.
 *
 * A proposal that can never succeed (too large, unencodable, malformed) fails at once with a
 * RejectedError, wherever it is found out (here or on the leader).
 *
 * Time is the leader's: a command that carries a time (`nowMs` of `session.destroy`, `kv.lock`,
 * `txn`, and of every command that can fail a check, CHECK_TIMED_TYPES: a session bound to it
 * ends in that apply; lock-delays are measured with it) gets the leader's clock when the leader
 * appends it, whoever proposed it, so a proposer's clock skew never shortens a lock-delay. A
 * lock-delay still running when the leader changes is compared with the new leader's clock: a
 * new leader whose clock runs δ ahead of the old one's shortens it by δ (README "Sessions and
 * locks": members' clocks must agree to well under the lock-delay).
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import { ProposalDroppedError } from "../../raft/mod.ts";
import { CHECK_TIMED_TYPES, type Command } from "../store/mod.ts";
import { type AppliedProposal, encodeProposal } from "./_apply.ts";
import { type ClusterCore, READ_TIMEOUT_MS } from "./_core.ts";
import {
  BusyError,
  ClosedError,
  deadlineError,
  NoLeaderError,
  NotLeaderError,
  RejectedError,
} from "./errors.ts";
import { forward } from "./_requests.ts";
import type { Proposed } from "./types.ts";
import { type Deferred, deferred } from "./_waiters.ts";

/** Longest a proposal waits for a leader and for its entry to apply. */
export const PROPOSAL_TIMEOUT_MS = 10_000;
/** Most proposals waiting for their entry at once; more are refused. */
export const PENDING_PROPOSALS_MAX = 65_536;
/** Largest proposal (one encoded command). */
export const PROPOSAL_BYTES_MAX = 4 * 1024 * 1024;
/**
 * Pause before retrying a proposal the leader could not take (unreachable, busy), unless the
 * leader or term changes first.
 */
export const RETRY_BACKOFF_MS = 50;

/** `command` with the leader's clock in its `nowMs` (module comment); others as they are. */
export function withLeaderTime(command: Command, nowMs: number): Command {
  if (command.type === "batch") {
    return { ...command, commands: command.commands.map((c) => withLeaderTime(c, nowMs)) };
  }
  return carriesTime(command) ? { ...command, nowMs } as Command : command;
}

/** Whether `command` carries a time the leader stamps. */
function carriesTime(command: Command): boolean {
  return command.type === "batch" ? command.commands.some(carriesTime) : TIMED.has(command.type);
}

const TIMED: ReadonlySet<string> = new Set([
  "session.destroy",
  "kv.lock",
  "txn",
  "token.create",
  "token.revoke",
  "token.use",
  "cert.record",
  "acme.claim",
  "acme.renew",
  ...CHECK_TIMED_TYPES,
]);

/** The entry payload for `command`; a RejectedError when it can never be proposed. */
export function encodeChecked(id: string, command: Command): Uint8Array {
  let data: Uint8Array;
  try {
    data = encodeProposal({ r: id, c: command });
  } catch (e) {
    throw new RejectedError(`command cannot be encoded: ${errorText(e)}`);
  }
  if (data.byteLength > PROPOSAL_BYTES_MAX) {
    throw new RejectedError(`proposal of ${data.byteLength} bytes is over ${PROPOSAL_BYTES_MAX}`);
  }
  return data;
}

export class Proposals {
  readonly #c: ClusterCore;
  /** Request id → the future of the proposal this leader appended for it. */
  readonly #pending = new Map<string, Deferred<Proposed>>();

  constructor(core: ClusterCore) {
    this.#c = core;
  }

  /** Commits `command`, applies it here, resolves with its index and result. */
  async propose(command: Command): Promise<Proposed> {
    const c = this.#c;
    const id = crypto.randomUUID();
    // Encoded here so a proposal that can never succeed fails at once; not kept while an attempt
    // is under way (a 1 MiB restore chunk would wait in memory for its apply for nothing).
    let data: Uint8Array | undefined = encodeChecked(id, command);
    const deadline = c.o.now() + PROPOSAL_TIMEOUT_MS;
    let lastError: Error | undefined;
    // Whether an attempt may have reached a leader's log: then the outcome is unknown at the
    // deadline (the entry may commit under the next leader), never "not done".
    let maybeTaken = false;
    while (!c.closed && c.o.now() < deadline) {
      let leader: number;
      try {
        leader = await c.awaitLeader(deadline);
      } catch (e) {
        lastError = e as Error;
        break;
      }
      const term = c.term();
      try {
        if (leader === c.self) {
          const stamped = carriesTime(command)
            ? encodeChecked(id, withLeaderTime(command, c.o.now()))
            : data ?? encodeChecked(id, command);
          data = undefined;
          return await this.#proposeLocal(id, stamped, deadline);
        }
        data = undefined;
        const res = await forward(c, {
          body: { t: "propose", id, cmd: command },
          timeoutMs: deadline - c.o.now(),
          what: "forward the proposal to",
        }) as Proposed;
        if (typeof res?.index !== "number") throw new Error("malformed propose answer");
        // Read-your-writes on this member: resolve once the local replica has it too.
        await c.awaitApplied(res.index, deadline);
        return res;
      } catch (e) {
        if (e instanceof RejectedError) throw e;
        lastError = e as Error;
        if (!neverTaken(lastError)) maybeTaken = true;
        // Same request id on the next try (applied once): wait until the leader or term
        // changes; for a leader that could not take it now, at most a short backoff.
        const changed = () => c.closed || c.leader !== leader || c.term() !== term;
        const until = e instanceof NotLeaderError
          ? deadline
          : Math.min(deadline, c.o.now() + RETRY_BACKOFF_MS);
        await c.until(changed, { deadline: until, timeout: () => new Error("no change") })
          .catch(() => {});
      }
    }
    if (c.closed) throw new ClosedError("cluster is closed");
    if (maybeTaken) throw deadlineError("proposal");
    throw new NoLeaderError(lastError?.message ?? "no leader elected");
  }

  /** On the leader: a proposal forwarded by another member. */
  proposeAsLeader(id: string, command: Command): Promise<Proposed> {
    if (this.#c.role !== "leader") return Promise.reject(new NotLeaderError("not the leader"));
    let data: Uint8Array;
    try {
      data = encodeChecked(id, withLeaderTime(command, this.#c.o.now()));
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#proposeLocal(id, data, this.#c.o.now() + PROPOSAL_TIMEOUT_MS);
  }

  #proposeLocal(id: string, data: Uint8Array, deadline: number): Promise<Proposed> {
    const c = this.#c;
    if (this.#pending.size >= PENDING_PROPOSALS_MAX) {
      return Promise.reject(new BusyError("too many proposals in flight; retry later"));
    }
    const d: Deferred<Proposed> = deferred(deadline - c.o.now(), {
      timeout: () => deadlineError("proposal"),
      forget: () => {
        if (this.#pending.get(id) === d) this.#pending.delete(id);
      },
    });
    try {
      c.node!.propose(data);
    } catch (e) {
      d.reject(
        e instanceof ProposalDroppedError
          ? new BusyError(`not the leader or busy: ${e.message}`)
          : e as Error,
      );
      return d.promise;
    }
    // A retry of the same request id on this leader: the earlier caller gets "superseded" and
    // retries too; both end with the one entry's result.
    this.#pending.get(id)?.reject(new BusyError("superseded by a retry"));
    this.#pending.set(id, d);
    c.schedule();
    return d.promise;
  }

  /** The loop applied entries with request ids: settle their proposers. */
  applied(done: AppliedProposal[]): void {
    for (const a of done) {
      const d = this.#pending.get(a.requestId);
      if (d === undefined) continue;
      this.#pending.delete(a.requestId);
      d.resolve({ index: a.index, result: a.result });
    }
  }

  /**
   * Leadership lost: entries proposed here may be overwritten by the next leader, so their
   * proposers retry there at once (same request id, applied once) instead of waiting it out.
   */
  leadershipLost(): void {
    this.failAll(new NotLeaderError("not the leader any more"));
  }

  failAll(e: Error): void {
    for (const d of this.#pending.values()) d.reject(e);
    this.#pending.clear();
  }

  /** ReadIndex (Raft §6.4): resolves once this replica has applied everything committed. */
  async readBarrier(): Promise<number> {
    const deadline = this.#c.o.now() + READ_TIMEOUT_MS;
    await this.#c.awaitLeader(deadline);
    return await this.#c.readIndex(deadline);
  }

  /**
   * On the leader: resolves once a quorum confirmed that this member still leads in the term it
   * had when called (ReadIndex) and its replica applied everything committed up to then;
   * NotLeaderError when it does not lead or lost its leadership meanwhile. A leader that was cut
   * off or paused (SIGSTOP) past an election cannot pass it, so what it answers afterwards from
   * its replica or timers is what the cluster decided (session renewals: _session_timers.ts).
   */
  async leaderBarrier(): Promise<void> {
    const c = this.#c;
    const term = c.term();
    if (c.role !== "leader") throw new NotLeaderError("not the leader");
    await c.readIndex(c.o.now() + READ_TIMEOUT_MS);
    if (c.role !== "leader" || c.term() !== term) {
      throw new NotLeaderError("not the leader any more");
    }
  }
}

/**
 * Whether a failed attempt certainly left no entry in any leader's log: no leader was asked, or
 * the request never left this member (NoLeaderError, see `request`), or the leader
 * refused it before appending (BusyError). Anything else — a leader that lost its leadership
 * after appending (NotLeaderError), a connection lost or timed out after sending — may have
 * taken effect.
 */
function neverTaken(e: Error): boolean {
  return e instanceof NoLeaderError || e instanceof BusyError;
}
