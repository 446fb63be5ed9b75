/**
 * Raft snapshots as files in `<data-dir>/snapshots`, so none is ever held whole in memory. The
 * Raft log (raft.db) and raft itself only carry a SnapshotRef: the file's name, size and SHA-256.
 * A member keeps the file its log's snapshot names (the one it sends a lagging member) and removes
 * the others; temp files of an interrupted write or transfer are removed at start.
 *
 * @module
 */
import { pack, unpack } from "msgpackr";

/** What a Raft snapshot's `data` holds: which file, and how to check it. */
export interface SnapshotRef {
  file: string;
  bytes: number;
  sha256: string;
}

export function encodeRef(r: SnapshotRef): Uint8Array {
  return pack({ file: r.file, bytes: r.bytes, sha256: r.sha256 });
}

/** The ref in a Raft snapshot's data; throws on anything else. */
export function decodeRef(data: Uint8Array): SnapshotRef {
  let r: Record<string, unknown> | undefined;
  try {
    r = unpack(data) as Record<string, unknown>;
  } catch {
    r = undefined;
  }
  if (
    typeof r?.file !== "string" || !/^[0-9]+-[0-9]+\.snap$/.test(r.file) ||
    !Number.isSafeInteger(r.bytes) || typeof r.sha256 !== "string"
  ) {
    throw new Error("raft snapshot data is not a snapshot file reference");
  }
  return { file: r.file, bytes: r.bytes as number, sha256: r.sha256 };
}

export interface SnapshotFilesOptions {
  /** Makes the renames in a directory durable (default `syncDir`: fsync on the directory). */
  syncDir?: (dir: string) => void;
}

export class SnapshotFiles {
  readonly dir: string;
  readonly #syncDir: (dir: string) => void;

  /** Creates `dir` if needed and removes temp files left by a crash. */
  constructor(dir: string, { syncDir: sync = syncDir }: SnapshotFilesOptions = {}) {
    this.dir = dir;
    this.#syncDir = sync;
    Deno.mkdirSync(dir, { recursive: true });
    for (const e of Deno.readDirSync(dir)) {
      if (e.isFile && e.name.endsWith(".tmp")) removeQuietly(`${dir}/${e.name}`);
    }
  }

  /** The final name of the snapshot at `index`/`term`. */
  static nameOf(index: number, term: number): string {
    return `${index}-${term}.snap`;
  }

  path(ref: SnapshotRef | string): string {
    return `${this.dir}/${typeof ref === "string" ? ref : ref.file}`;
  }

  /** A fresh temp path (removed at the next start if left behind). */
  tempPath(what: string): string {
    return `${this.dir}/${what}-${crypto.randomUUID()}.tmp`;
  }

  /**
   * Moves a finished (synced) temp file to its final name and syncs the directory, so the name
   * survives a power loss before the caller persists the ref or compacts the log; the ref that
   * names it.
   */
  keep(tmp: string, index: number, term: number, bytes: number, sha256: string): SnapshotRef {
    const file = SnapshotFiles.nameOf(index, term);
    Deno.renameSync(tmp, this.path(file));
    this.#syncDir(this.dir);
    return { file, bytes, sha256 };
  }

  /**
   * Removes every snapshot file older than index `keepFrom` (the log's snapshot and a newer one
   * received but not persisted yet stay, as do temp files of transfers under way).
   */
  prune(keepFrom: number): void {
    for (const e of Deno.readDirSync(this.dir)) {
      const m = /^(\d+)-\d+\.snap$/.exec(e.name);
      if (e.isFile && m !== null && Number(m[1]) < keepFrom) removeQuietly(this.path(e.name));
    }
  }

  remove(path: string): void {
    removeQuietly(path);
  }
}

/**
 * fsync(2) on a directory, which makes a rename in it durable. Deno opens a directory read-only
 * and `syncSync()` calls fsync on that descriptor (checked on Linux with Deno 2.9).
 */
export function syncDir(dir: string): void {
  const d = Deno.openSync(dir, { read: true });
  try {
    d.syncSync();
  } finally {
    d.close();
  }
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch { /* already gone */ }
}
