/**
 * Snapshots saved by berth before snapshots streamed: one msgpack map of tables (schema 1 or 2),
 * at most LEGACY_SNAPSHOT_BYTES_MAX bytes (the restore limit of that format). `berth snapshot
 * restore` still takes them: the user tables are re-encoded in the stream format
 * (snapshot_format.ts), schema-1 instance rows migrated first (migrate.ts); the rows are checked
 * as any snapshot's when the stream is restored.
 *
 * @module
 */
import { unpack } from "msgpackr";
import { errorText } from "../lib/error_text.ts";
import { migrateInstanceRows } from "./migrate.ts";
import { encodeFrame, encodeHeader, USER_TABLES } from "./snapshot_format.ts";

/** Largest snapshot of the old format (its restore went in one proposal). */
export const LEGACY_SNAPSHOT_BYTES_MAX = 3 * 1024 * 1024;
const LEGACY_FORMAT = "berth-store-snapshot";

/** Whether a snapshot starting with `head` is of the old format (a msgpack map). */
export function isLegacySnapshot(head: Uint8Array): boolean {
  const b = head[0];
  return b !== undefined && ((b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf);
}

/** An old-format snapshot as a "user" snapshot stream; throws one line when it is not one. */
export function legacySnapshotStream(bytes: Uint8Array): Uint8Array {
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
  const parts = [
    encodeHeader({ kind: "user", index: Number.isSafeInteger(applied) ? applied as number : 0 }),
  ];
  let rows = 0;
  for (const t of USER_TABLES) {
    const table = snap[t] ?? [];
    if (!Array.isArray(table)) throw new Error(`restore: table ${t} is not a list of rows`);
    if (table.length === 0) continue;
    parts.push(encodeFrame({ t, rows: table }));
    rows += table.length;
  }
  parts.push(encodeFrame({ end: true, rows }));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}
