import { deepStrictEqual as eq, throws } from "node:assert/strict";
import { RaftLog } from "./log.ts";
import { CompactedError, MemoryStorage, SnapOutOfDateError, UnavailableError } from "./storage.ts";
import { ent } from "./testing/helpers.ts";

function storageWith(...terms: number[]): MemoryStorage {
  const s = new MemoryStorage();
  s.append(terms.map((t, i) => ent(t, i + 1)));
  return s;
}

Deno.test("MemoryStorage.term() and entries() report compacted and unavailable indexes", () => {
  const s = storageWith(1, 2, 3, 4, 5);
  s.compact(2);
  eq(s.firstIndex(), 3);
  eq(s.term(2), 2, "the snapshot entry's term is kept");
  throws(() => s.term(1), CompactedError);
  throws(() => s.term(6), UnavailableError);
  throws(() => s.entries(2, 4, Infinity), CompactedError);
  eq(s.entries(3, 6, Infinity).map((e) => e.index), [3, 4, 5]);
  // Reference: §7
});

Deno.test("MemoryStorage.entries() honours the byte limit but returns at least one entry", () => {
  const s = storageWith(1, 1, 1);
  eq(s.entries(1, 4, 0).length, 1);
  eq(s.entries(1, 4, 48).length, 2);
  // Reference: §5.3 (message size limits)
});

Deno.test("MemoryStorage.append() truncates a conflicting suffix and skips compacted entries", () => {
  const s = storageWith(1, 1, 1);
  s.append([ent(2, 2), ent(2, 3), ent(2, 4)]);
  eq([1, 2, 3, 4].map((i) => s.term(i)), [1, 2, 2, 2]);
  s.compact(3);
  s.append([ent(2, 2), ent(2, 3), ent(2, 4), ent(3, 5)]);
  eq(s.lastIndex(), 5);
  throws(() => s.append([ent(3, 9)]), /missing log entry/);
  // Reference: §5.3
});

Deno.test("MemoryStorage snapshots: create, apply, out of date", () => {
  const s = storageWith(1, 1, 2);
  const snap = s.createSnapshot(2, { voters: [1], learners: [] }, new Uint8Array([7]));
  eq(snap.metadata, { index: 2, term: 1, confState: { voters: [1], learners: [] } });
  throws(
    () => s.createSnapshot(2, { voters: [1], learners: [] }, new Uint8Array()),
    SnapOutOfDateError,
  );
  const other = new MemoryStorage();
  other.applySnapshot(snap);
  eq(other.firstIndex(), 3);
  eq(other.lastIndex(), 2);
  eq(other.initialState().confState.voters, [1]);
  throws(() => other.applySnapshot(snap), SnapOutOfDateError);
  // Reference: §7
});

Deno.test("RaftLog.maybeAppend() truncates a conflicting suffix", () => {
  const log = new RaftLog(storageWith(1, 2, 3));
  eq(log.maybeAppend(1, 1, 3, [ent(4, 2)]), 2);
  eq(log.allEntries().map((e) => e.term), [1, 4]);
  eq(log.committed, 2);
  eq(log.maybeAppend(2, 9, 3, []), undefined, "mismatching prev term");
  // Reference: §5.3
});

Deno.test("RaftLog.maybeAppend() refuses to overwrite a committed entry", () => {
  const log = new RaftLog(storageWith(1, 1, 1));
  log.commitTo(3);
  throws(() => log.maybeAppend(1, 1, 3, [ent(2, 2)]), /conflicts with committed/);
  // Reference: §5.4 (State Machine Safety)
});

Deno.test("RaftLog.findConflictByTerm() skips whole terms", () => {
  const log = new RaftLog(storageWith(1, 1, 4, 4, 4, 5, 5));
  eq(log.findConflictByTerm(7, 4), [5, 4]);
  eq(log.findConflictByTerm(7, 3), [2, 1]);
  eq(log.findConflictByTerm(7, 9), [7, 5]);
  eq(log.findConflictByTerm(2, 0), [0, 0]);
  // Reference: §5.3 (accelerated log backtracking)
});

Deno.test("RaftLog.isUpToDate() compares last term, then length", () => {
  const log = new RaftLog(storageWith(1, 2, 2));
  eq(log.isUpToDate(3, 2), true);
  eq(log.isUpToDate(2, 2), false);
  eq(log.isUpToDate(1, 3), true);
  eq(log.isUpToDate(9, 1), false);
  // Reference: §5.4.1
});

Deno.test("RaftLog.commitTo() never goes back and never beyond the last index", () => {
  const log = new RaftLog(storageWith(1, 1));
  log.commitTo(2);
  log.commitTo(1);
  eq(log.committed, 2);
  throws(() => log.commitTo(3), /out of range/);
  // Reference: §5.3
});
