/**
 * # raft — consensus as a pure state machine
 *
 * A TypeScript port of etcd-io/raft's model: no I/O, no timers, no clock, no randomness of its
 * own. The application owns the log storage, the network and the ticker and drives a
 * {@link RawNode}:
 *
 * ```ts
 * import { MemoryStorage, RawNode } from "./mod.ts";
 * const storage = new MemoryStorage({ confState: { voters: [1, 2, 3], learners: [] } });
 * const node = new RawNode({ id: 1, storage, random: (n) => myRng.int(n) });
 * // every tick interval: node.tick();
 * // on a frame from the network: node.step(validateMessage(decode(frame)));
 * // to write: node.propose(bytes)  (throws ProposalDroppedError if dropped)
 * ```
 *
 * ## The ready contract
 *
 * Whenever `node.hasReady()`, take `const rd = node.ready()` and, in this order:
 *
 * 1. **Persist** atomically: `rd.snapshot` (if any) first, then append `rd.entries` (they may
 *    overwrite a conflicting suffix of the stored log), then `rd.hardState` (if present).
 *    Sync to disk if `rd.mustSync`.
 * 2. **Send** `rd.messages` (only after step 1: a vote or an append acknowledgement must never
 *    leave before the state it promises is durable). For a `MsgSnap`, report the outcome with
 *    `node.reportSnapshot(to, "finish" | "failure")`; for an undeliverable message,
 *    `node.reportUnreachable(to)`.
 * 3. **Apply** `rd.snapshot` to the state machine, then `rd.committedEntries` in order. For a
 *    `confChange` entry, call `node.applyConfChange(decodeConfChange(entry.data))` (it returns
 *    the new ConfState to store with future snapshots). Serve `rd.readStates` once the applied
 *    index reaches each read state's index.
 * 4. **`node.advance()`**. Only then may `ready()` be called again. `step`, `tick`, `propose`
 *    and the rest may be called between `ready()` and `advance()`.
 *
 * Entries the application applied may later be compacted: `storage.createSnapshot(applied,
 * confState, data)` then `storage.compact(applied)`; followers that fall behind the first index
 * are sent that snapshot.
 *
 * ## Starting and restarting
 *
 * A new cluster: every initial member persists `bootstrapEntries(confState)` (or, in tests,
 * uses `new MemoryStorage({ confState })`). A node joining later starts with empty storage and
 * is added by `proposeConfChange({ type: "addLearner" | "addNode", nodeId })` on the leader.
 * A restart constructs `RawNode` again over the persisted storage, with `applied` set to the
 * last applied index (whose membership `storage.initialState().confState` must describe).
 *
 * Membership safety argument: see `confchange.ts`.
 *
 * @module
 */
export type { Config } from "./config.ts";
export { RawNode } from "./node.ts";
export type { PeerStatus, Ready, Status } from "./node.ts";
export { ENTRY_OVERHEAD_BYTES } from "./util.ts";
export {
  CompactedError,
  MemoryStorage,
  SnapOutOfDateError,
  SnapshotTemporarilyUnavailableError,
  UnavailableError,
} from "./storage.ts";
export type { Storage } from "./storage.ts";
export { validateMessage } from "./validate.ts";
export { applyChange, bootstrapEntries, decodeConfChange, encodeConfChange } from "./confchange.ts";
export {
  isEmptyHardState,
  isEmptySnapshot,
  LOCAL_MESSAGE_TYPES,
  NETWORK_MESSAGE_TYPES,
  NONE,
  ProposalDroppedError,
  RaftInvariantError,
} from "./types.ts";
export type {
  ConfChange,
  ConfChangeType,
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  MessageType,
  NodeId,
  ReadOnlyOption,
  ReadState,
  Snapshot,
  SnapshotMetadata,
  SnapshotStatus,
  SoftState,
  StateType,
} from "./types.ts";
export type { ProgressState } from "./progress.ts";
