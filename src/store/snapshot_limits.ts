/**
 * The one size policy every snapshot path follows: a Raft snapshot streamed to a lagging member
 * (sender and receiver), `berth snapshot save` and `berth snapshot restore`.
 *
 * @module
 */

/** Bytes per chunk of a transfer between members; the most a restore proposal carries. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/**
 * Bytes of rows per table frame, about (one row may exceed it), and per restore proposal. Every
 * member checks and stages a restore proposal's frames in one apply (about 150-250 ms per MiB of
 * instances here), so both stay small enough for that apply not to hold the event loop long.
 */
export const SNAPSHOT_FRAME_TARGET_BYTES = 256 * 1024;
export const RESTORE_CHUNK_BYTES = 256 * 1024;
/** Largest snapshot sent, received, saved or restored. */
export const SNAPSHOT_BYTES_MAX = 1024 * 1024 * 1024;
/** Chunks a sender has in flight (sent, not yet acknowledged) per transfer. */
export const SNAPSHOT_WINDOW_CHUNKS = 4;
/** A transfer that receives no chunk for this long is given up (its temp file removed). */
export const SNAPSHOT_STALE_MS = 30_000;
/** Largest frame: a table frame of SNAPSHOT_CHUNK_BYTES plus one row of the largest KV value. */
export const SNAPSHOT_FRAME_BYTES_MAX = 4 * 1024 * 1024;
