/**
 * Linearizability checker for histories recorded by berth's tests (Jepsen-style: many clients hit
 * the cluster, each records call time, input, output and return time of every operation).
 *
 * The algorithm is Wing & Gong's search with Lowe's improvements, as porcupine
 * (anishathalye/porcupine) runs it:
 * - P-compositionality: linearizability is local (Herlihy & Wing 1990, Theorem 1), so a history
 *   is split into independent partitions (e.g. one per KV key) and each is checked alone.
 * - The partition's operations become a doubly linked list of call and return entries, sorted by
 *   time (a call sorts before a return at the same time, so touching operations count as
 *   concurrent). Linearizing an operation "lifts" its call and return out of the list;
 *   backtracking puts them back.
 * - Search: walk the list from the head. At a call entry, try to apply the operation to the model;
 *   if legal and the pair (set of linearized operations, model state) was never seen, push it and
 *   restart from the head. At a return entry, the operation it closes had to be linearized by now
 *   and was not: pop the last choice and try the next call after it. An empty stack at a return
 *   means no linearization exists. The cache of (bitset, state) pairs (Lowe 2017, §3) prunes
 *   every configuration already shown to be a dead end.
 *
 * Unknown outcomes (timeout, connection lost): record the operation with `return: Infinity`. Its
 * return entry then sits after every real return, so the search may place the operation anywhere
 * after its call, including after every operation that completed; placing it there is the same,
 * for everything observed, as "it never took effect". The model must accept any output for it
 * (`kvModel` does: `{ unknown: true }`). This is how porcupine's etcd model treats unknown
 * results. A read with an unknown outcome cannot change state and says nothing, so
 * `normalizeHistory()` drops it.
 *
 * Options of `checkOperations()`:
 * - `timeoutMs` (default `CHECK_TIMEOUT_MS_DEFAULT`): wall-clock budget for the whole history; when
 *   spent the result is `{ ok: "unknown" }` (unless a partition was already found illegal).
 *
 * @example
 * ```ts
 * const history: Operation<KvInput, KvOutput>[] = [
 *   { clientId: 0, input: { key: "a", op: "put", value: "1" }, call: 0, output: { ok: true }, return: 2 },
 *   { clientId: 1, input: { key: "a", op: "get" }, call: 3, output: { value: null }, return: 4 },
 * ];
 * const result = checkOperations(kvModel, history);
 * // { ok: false, partition: 0, explanation: "... client 1: get a → null [3, 4] could not be placed ..." }
 * ```
 *
 * @module
 */

/** One completed (or timed-out) operation of a client. Times are any monotonic numbers. */
export interface Operation<I, O> {
  clientId: number;
  input: I;
  call: number;
  output: O;
  /** Infinity when the outcome is unknown (timeout): the op may take effect any time after call. */
  return: number;
}

/** A sequential specification of the object under test. */
export interface Model<S, I, O> {
  init(): S;
  /** Whether `output` is a legal result of applying `input` in `state`, and the state after. */
  step(state: S, input: I, output: O): [ok: boolean, next: S];
  /** State equality, for the search cache. */
  equal(a: S, b: S): boolean;
  /** Split a history into independently checkable parts (e.g. by key). Default: one part. */
  partition?(history: Operation<I, O>[]): Operation<I, O>[][];
  describe?(op: Operation<I, O>): string;
}

export type CheckResult = { ok: true } | { ok: false; partition: number; explanation: string };
export type CheckOperationsResult = CheckResult | { ok: "unknown" };

/** Wall-clock budget of one `checkOperations()` call. */
export const CHECK_TIMEOUT_MS_DEFAULT = 30_000;
/** Search steps between two clock reads. */
const DEADLINE_CHECK_STEPS = 1024;
/** Operations of the linearizable prefix printed in an explanation (the last ones). */
const EXPLAIN_PREFIX_OPS_MAX = 20;
/** Characters of a model state printed in an explanation. */
const EXPLAIN_STATE_CHARS_MAX = 200;

/**
 * Checks that `history` is linearizable with respect to `model`.
 * Returns `{ ok: false, partition, explanation }` for the first illegal partition (index into
 * `model.partition(history)`), `{ ok: "unknown" }` if `opts.timeoutMs` ran out first.
 * Throws a RangeError for a malformed history (a non-finite call, a return before its call).
 */
export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  history: Operation<I, O>[],
  opts: { timeoutMs?: number } = {},
): CheckOperationsResult {
  const deadline = Date.now() + (opts.timeoutMs ?? CHECK_TIMEOUT_MS_DEFAULT);
  for (const op of history) validateOperation(op);
  const partitions = model.partition ? model.partition(history) : [history];
  for (const [index, ops] of partitions.entries()) {
    const result = checkPartition(model, ops, deadline);
    if (result.kind === "timeout") return { ok: "unknown" };
    if (result.kind === "illegal") {
      return {
        ok: false,
        partition: index,
        explanation: `partition ${index}: ${result.explanation}`,
      };
    }
  }
  return { ok: true };
}

function validateOperation(op: Operation<unknown, unknown>): void {
  if (!Number.isFinite(op.call)) {
    throw new RangeError(`operation of client ${op.clientId}: call time ${op.call} is not finite`);
  }
  if (Number.isNaN(op.return) || op.return < op.call) {
    throw new RangeError(
      `operation of client ${op.clientId}: return time ${op.return} is before call time ${op.call}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// The search (one partition)

/** A call or return entry of the list. A call's `match` is its return; a return's is null. */
interface Entry {
  id: number;
  time: number;
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

type PartitionResult = { kind: "ok" } | { kind: "illegal"; explanation: string } | {
  kind: "timeout";
};

function checkPartition<S, I, O>(
  model: Model<S, I, O>,
  ops: Operation<I, O>[],
  deadline: number,
): PartitionResult {
  const head = buildList(ops);
  const linearized = new Bitset(ops.length);
  const cache = new Map<number, { bits: Bitset; state: S }[]>();
  const calls: { entry: Entry; state: S }[] = [];
  let state = model.init();
  // The deepest dead end seen, for the explanation.
  let best: { prefix: number[]; blocked: number; state: S } | null = null;

  let entry = head.next;
  let steps = 0;
  while (head.next !== null) {
    if (steps++ % DEADLINE_CHECK_STEPS === 0 && Date.now() >= deadline) return { kind: "timeout" };
    // Invariant: the list ends with a return entry, and a return is never passed without
    // backtracking, so the walk cannot fall off the end while the list is non-empty.
    if (entry === null) throw new Error("linearizability: walked past the end of the entry list");
    if (entry.match !== null) {
      const op = ops[entry.id]!;
      const [legal, next] = model.step(state, op.input, op.output);
      if (legal) {
        linearized.set(entry.id);
        if (cacheAdd(cache, linearized, next, model)) {
          calls.push({ entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized.clear(entry.id);
      }
      entry = entry.next;
    } else {
      // Operation `entry.id` returned here and could not be linearized before its return.
      if (best === null || calls.length > best.prefix.length) {
        best = { prefix: calls.map((c) => c.entry.id), blocked: entry.id, state };
      }
      const top = calls.pop();
      if (top === undefined) return { kind: "illegal", explanation: explain(model, ops, best) };
      linearized.clear(top.entry.id);
      state = top.state;
      unlift(top.entry);
      entry = top.entry.next;
    }
  }
  return { kind: "ok" };
}

/** Sorted call/return entries as a linked list behind a sentinel head. */
function buildList(ops: Operation<unknown, unknown>[]): Entry {
  const entries: { entry: Entry; isCall: boolean }[] = [];
  for (const [id, op] of ops.entries()) {
    const ret: Entry = { id, time: op.return, match: null, prev: null, next: null };
    const call: Entry = { id, time: op.call, match: ret, prev: null, next: null };
    entries.push({ entry: call, isCall: true }, { entry: ret, isCall: false });
  }
  entries.sort((a, b) => {
    if (a.entry.time !== b.entry.time) return a.entry.time < b.entry.time ? -1 : 1;
    if (a.isCall !== b.isCall) return a.isCall ? -1 : 1; // touching ops are concurrent
    return a.entry.id - b.entry.id;
  });
  const head: Entry = { id: -1, time: -Infinity, match: null, prev: null, next: null };
  let last = head;
  for (const { entry } of entries) {
    last.next = entry;
    entry.prev = last;
    last = entry;
  }
  return head;
}

/** Removes a call entry and its return from the list. */
function lift(call: Entry): void {
  const ret = call.match!;
  call.prev!.next = call.next;
  call.next!.prev = call.prev; // a call is always followed, at least by its return
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Undoes `lift(call)`; must be applied in reverse order of lifting. */
function unlift(call: Entry): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev!.next = call;
  call.next!.prev = call;
}

/** Adds (bits, state) to the cache; returns false if it was already there. */
function cacheAdd<S>(
  cache: Map<number, { bits: Bitset; state: S }[]>,
  bits: Bitset,
  state: S,
  model: Model<S, unknown, unknown>,
): boolean {
  const hash = bits.hash();
  const bucket = cache.get(hash);
  if (bucket === undefined) {
    cache.set(hash, [{ bits: bits.clone(), state }]);
    return true;
  }
  for (const seen of bucket) {
    if (seen.bits.equals(bits) && model.equal(seen.state, state)) return false;
  }
  bucket.push({ bits: bits.clone(), state });
  return true;
}

class Bitset {
  readonly words: Uint32Array;
  constructor(size: number, words?: Uint32Array) {
    this.words = words ?? new Uint32Array(Math.ceil(size / 32));
  }
  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31);
  }
  clear(i: number): void {
    this.words[i >>> 5]! &= ~(1 << (i & 31));
  }
  clone(): Bitset {
    return new Bitset(0, this.words.slice());
  }
  equals(other: Bitset): boolean {
    for (let i = 0; i < this.words.length; i++) {
      if (this.words[i] !== other.words[i]) return false;
    }
    return true;
  }
  /** FNV-1a over the words. */
  hash(): number {
    let h = 0x811c9dc5;
    for (const w of this.words) h = Math.imul(h ^ w, 0x01000193);
    return h >>> 0;
  }
}

function explain<S, I, O>(
  model: Model<S, I, O>,
  ops: Operation<I, O>[],
  best: { prefix: number[]; blocked: number; state: S } | null,
): string {
  // Invariant: the search fails only at a return entry, which records `best` first.
  if (best === null) throw new Error("linearizability: illegal partition without a dead end");
  const describe = (id: number) => describeOp(model, ops[id]!);
  const shown = best.prefix.slice(-EXPLAIN_PREFIX_OPS_MAX).map(describe);
  const hidden = best.prefix.length - shown.length;
  const prefix = shown.length === 0
    ? "(none)"
    : (hidden > 0 ? `… ${hidden} earlier; ` : "") + shown.join("; ");
  return `not linearizable. Longest linearizable prefix found (${best.prefix.length} of ` +
    `${ops.length} ops): ${prefix}. Then ${describe(best.blocked)} could not be placed ` +
    `(state after the prefix: ${describeState(best.state)}).`;
}

function describeOp<I, O>(model: Model<unknown, I, O>, op: Operation<I, O>): string {
  if (model.describe) return model.describe(op);
  return `client ${op.clientId}: ${safeJson(op.input)} → ${safeJson(op.output)} ` +
    `[${op.call}, ${formatTime(op.return)}]`;
}

function describeState(state: unknown): string {
  const s = safeJson(state);
  return s.length > EXPLAIN_STATE_CHARS_MAX ? `${s.slice(0, EXPLAIN_STATE_CHARS_MAX)}…` : s;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function formatTime(t: number): string {
  return t === Infinity ? "∞" : String(t);
}

// ---------------------------------------------------------------------------------------------
// A KV model for berth's tests

export type KvInput =
  | { key: string; op: "get" }
  | { key: string; op: "put"; value: string }
  | { key: string; op: "cas"; expect: string | null; value: string };

/** get: `{ value }`; put: `{ ok: true }`; cas: `{ ok }` (whether it swapped); `{ unknown: true }`. */
export type KvOutput = { value: string | null } | { ok: boolean } | { unknown: true };

function isUnknown(output: KvOutput): output is { unknown: true } {
  return "unknown" in output && output.unknown === true;
}

/**
 * Prepares a KV history for checking: an operation with an unknown outcome may take effect at
 * any later time, so its return becomes Infinity; a get with an unknown outcome changes nothing
 * and observes nothing, so it is dropped. Returns a new array; the input is not modified.
 */
export function normalizeHistory(
  history: Operation<KvInput, KvOutput>[],
): Operation<KvInput, KvOutput>[] {
  const out: Operation<KvInput, KvOutput>[] = [];
  for (const op of history) {
    if (!isUnknown(op.output)) out.push(op);
    else if (op.input.op !== "get") out.push({ ...op, return: Infinity });
  }
  return out;
}

/**
 * A linearizable register per key. State: the key's current value, null when absent.
 * - get → `{ value }` must equal the state.
 * - put → `{ ok: true }` sets the value. (A put that surely failed should not be recorded; one
 *   whose fate is unknown is recorded with `{ unknown: true }`.)
 * - cas(expect, value) → `{ ok }`: swaps iff the state equals `expect` (null: create if absent),
 *   and `ok` must say whether it did. berth's CAS compares modify indexes; a test that writes
 *   unique values and passes the index it read as `expect` makes the two equivalent.
 * - `{ unknown: true }`: any result is legal; put and cas apply as above.
 * `partition()` normalizes the history (see `normalizeHistory()`) and splits it by key.
 */
export const kvModel: Model<string | null, KvInput, KvOutput> = {
  init: () => null,
  step(state, input, output) {
    const unknown = isUnknown(output);
    switch (input.op) {
      case "get":
        return [unknown || ("value" in output && output.value === state), state];
      case "put":
        return [unknown || ("ok" in output && output.ok === true), input.value];
      case "cas": {
        const swapped = state === input.expect;
        const next = swapped ? input.value : state;
        return [unknown || ("ok" in output && output.ok === swapped), next];
      }
    }
  },
  equal: (a, b) => a === b,
  partition(history) {
    const byKey = new Map<string, Operation<KvInput, KvOutput>[]>();
    for (const op of normalizeHistory(history)) {
      const ops = byKey.get(op.input.key);
      if (ops) ops.push(op);
      else byKey.set(op.input.key, [op]);
    }
    return [...byKey.values()];
  },
  describe(op) {
    const i = op.input;
    const what = i.op === "get"
      ? `get ${i.key}`
      : i.op === "put"
      ? `put ${i.key}=${JSON.stringify(i.value)}`
      : `cas ${i.key} ${JSON.stringify(i.expect)}→${JSON.stringify(i.value)}`;
    const o = op.output;
    const result = isUnknown(o)
      ? "unknown"
      : "value" in o
      ? JSON.stringify(o.value)
      : o.ok
      ? "ok"
      : "failed";
    return `client ${op.clientId}: ${what} → ${result} [${op.call}, ${formatTime(op.return)}]`;
  },
};
