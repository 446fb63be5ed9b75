/**
 * Snapshot files of the store: written piece by piece from a `SnapshotSource` (what the Raft
 * runtime ships to a lagging member and `berth snapshot save` hands out), and a "raft" snapshot
 * file installed in place of the whole state in one transaction. A file-backed store runs both
 * on the snapshot thread (snapshot_thread.ts), through a connection of its own.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { createHash } from "node:crypto";
import { SNAPSHOT_BYTES_MAX } from "./snapshot_limits.ts";
import { rebuildCheckHolders } from "./check_holders.ts";
import { RAFT_TABLES, SnapshotDecoder } from "./snapshot_format.ts";
import { insertFrame, type SnapshotSource } from "./snapshot_io.ts";
import { seedAclBuiltins } from "./acl_tables.ts";
import { rollback } from "../lib/sqlite_rollback.ts";

/** A snapshot file written by Store.writeSnapshotFile(). */
export interface SnapshotFileInfo {
  /** Applied index the snapshot is consistent at. */
  index: number;
  confState: { voters: number[]; learners: number[] };
  bytes: number;
  /** SHA-256 of the file, hex. */
  sha256: string;
}

/**
 * Writes `src` to `path` (synced) and closes `src`; over SNAPSHOT_BYTES_MAX fails. `afterPiece`
 * runs after each piece is written (the snapshot thread's nudge of its collector).
 */
export async function writeSnapshotFile(
  src: SnapshotSource,
  path: string,
  afterPiece?: () => void,
): Promise<SnapshotFileInfo> {
  const hash = createHash("sha256");
  let bytes = 0;
  try {
    // Owner-only: a Raft snapshot holds the CA key and token hashes.
    using file = await Deno.open(path, { write: true, create: true, truncate: true, mode: 0o600 });
    for (let piece = src.next(); piece !== null; piece = src.next()) {
      hash.update(piece);
      bytes += piece.byteLength;
      if (bytes > SNAPSHOT_BYTES_MAX) {
        throw new Error(`snapshot: the store is over ${SNAPSHOT_BYTES_MAX} bytes`);
      }
      await writeAll(file, piece);
      afterPiece?.();
    }
    await file.sync();
  } finally {
    src.close();
  }
  return { index: src.index, confState: src.confState, bytes, sha256: hash.digest("hex") };
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.byteLength;) off += await file.write(data.subarray(off));
}

/** What an install changed: the applied index it brought, services present before or after. */
export interface InstallOutcome {
  applied: number;
  services: string[];
}

/**
 * Replaces every Raft table of `db` (and its meta counters) with a "raft" snapshot file's, in
 * one transaction: a row that does not fit, a truncated file or a user snapshot changes nothing.
 * The ACL built-ins are put back in the same transaction (a snapshot from before ACLs has none).
 */
export function installSnapshotFile(db: DatabaseSync, path: string): InstallOutcome {
  const dec = new SnapshotDecoder();
  const distinct = db.prepare("SELECT DISTINCT service FROM instances");
  const services = new Set<string>();
  const addServices = () => {
    for (const r of distinct.all()) services.add(String(r.service));
  };
  db.exec("BEGIN IMMEDIATE");
  try {
    addServices();
    for (const t of RAFT_TABLES) db.exec(`DELETE FROM ${t}`);
    db.exec("DELETE FROM meta WHERE key != 'schema'");
    dec.readFile(path, (f) => {
      if (dec.header?.kind !== "raft") {
        throw new Error("snapshot: a user snapshot cannot be installed as a Raft snapshot");
      }
      insertFrame(db, f);
    });
    if (dec.header?.kind !== "raft") {
      throw new Error("snapshot: a user snapshot cannot be installed as a Raft snapshot");
    }
    seedAclBuiltins(db);
    rebuildCheckHolders(db); // derived from the instances, in no snapshot
    addServices();
    const applied = db.prepare("SELECT value FROM meta WHERE key='applied'").get();
    db.exec("COMMIT");
    return { applied: applied === undefined ? 0 : Number(applied.value), services: [...services] };
  } catch (e) {
    rollback(db);
    throw e;
  }
}
