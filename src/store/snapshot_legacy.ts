/**
 * Snapshots written by berth before snapshots streamed: one msgpack map of tables (schema 1 or
 * 2). `berth snapshot restore` still takes saved ones (at most LEGACY_SNAPSHOT_BYTES_MAX, the
 * restore limit of that format), and a Raft log that still holds one has it rewritten as a file
 * at start: the tables are re-encoded in the stream format (snapshot_format.ts), schema-1
 * instance rows migrated first (migrate.ts); the rows are checked as any snapshot's when the
 * stream is restored or installed.
 *
 * @module
 */
import { unpack } from "msgpackr";
import { errorText } from "../lib/error_text.ts";
import { migrateInstanceRows } from "./migrate.ts";
import { encodeFrame, encodeHeader, type SnapshotKind, USER_TABLES } from "./snapshot_format.ts";
import { rowBytes } from "./snapshot_io.ts";
import { SNAPSHOT_FRAME_TARGET_BYTES } from "./snapshot_limits.ts";
import { concatBytes } from "../lib/bytes.ts";

/** Largest snapshot of the old format (its restore went in one proposal). */
export const LEGACY_SNAPSHOT_BYTES_MAX = 3 * 1024 * 1024;
const LEGACY_FORMAT = "berth-store-snapshot";

/** Whether a snapshot starting with `head` is of the old format (a msgpack map). */
export function isLegacySnapshot(head: Uint8Array): boolean {
  const b = head[0];
  return b !== undefined && ((b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf);
}

/**
 * An old-format snapshot as a stream of `kind` ("user": services, nodes and KV; "raft": every
 * table the old format held), frame by frame; throws one line when it is not one.
 */
export function* legacySnapshotFrames(
  bytes: Uint8Array,
  kind: SnapshotKind,
): Generator<Uint8Array> {
  let snap: Record<string, unknown> | undefined;
  try {
    snap = unpack(bytes) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`restore: not a berth store snapshot (${errorText(e)})`);
  }
  if (snap?.format !== LEGACY_FORMAT || (snap.schema !== 1 && snap.schema !== 2)) {
    throw new Error("restore: not a berth store snapshot of a schema this berth reads");
  }
  if (snap.schema === 1) migrateInstanceRows(snap.instances);
  const meta = Array.isArray(snap.meta) ? snap.meta as { key?: unknown; value?: unknown }[] : [];
  const applied = meta.find((r) => r?.key === "applied")?.value;
  yield encodeHeader({ kind, index: Number.isSafeInteger(applied) ? applied as number : 0 });
  const tables = kind === "raft"
    ? ["meta", ...USER_TABLES, "members", "cluster", "requests"]
    : [...USER_TABLES];
  let total = 0;
  for (const t of tables) {
    const rows = (snap[t] ?? []) as Record<string, unknown>[];
    if (!Array.isArray(rows)) throw new Error(`restore: table ${t} is not a list of rows`);
    // Frames of about SNAPSHOT_FRAME_TARGET_BYTES, as the stream format wants.
    let from = 0;
    let size = 0;
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      size += typeof r === "object" && r !== null ? rowBytes(r) : 8; // the decoder refuses it
      if (size >= SNAPSHOT_FRAME_TARGET_BYTES || i === rows.length - 1) {
        yield encodeFrame({ t, rows: rows.slice(from, i + 1) });
        from = i + 1;
        size = 0;
      }
    }
    total += rows.length;
  }
  yield encodeFrame({ end: true, rows: total });
}

/** An old-format snapshot as one "user" snapshot stream (the old format's size at most). */
export function legacySnapshotStream(bytes: Uint8Array): Uint8Array {
  return concatBytes([...legacySnapshotFrames(bytes, "user")]);
}
