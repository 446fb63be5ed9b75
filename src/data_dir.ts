/**
 * The agent's data directory: one agent at a time, always under the same node name.
 *
 * - `berth.lock` holds an exclusive advisory lock (flock) for the agent's whole life, with the
 *   holder's PID inside for the message a second agent prints. The kernel drops the lock when
 *   its process dies, so a crashed agent's lock never blocks a restart.
 * - `node` records the node name the directory was first started with; starting it with another
 *   `--node` is refused (the cluster would know the node under both names). A directory that is a
 *   cluster member is checked against the name the cluster knows it by (its Raft identity's id in
 *   the store's membership) first, so a directory made before the `node` file existed, or whose
 *   `node` file a start before this check wrote with another name, is refused the same way.
 *
 * @module
 */

import { errorText } from "./lib/error_text.ts";
import { writeFileAtomic } from "./lib/atomic_file.ts";
import { SqliteRaftStorage } from "./cluster/mod.ts";
import { Store } from "./store/mod.ts";

export const LOCK_FILE = "berth.lock";
export const NODE_FILE = "node";
/** The Raft log (src/cluster/raft_storage.ts). */
export const RAFT_FILE = "raft.db";
/** The replicated store (src/store/store.ts). */
export const STORE_FILE = "store.db";
/** Longest `node` file read back (a node name is far shorter). */
const NODE_FILE_BYTES_MAX = 4096;

/**
 * Writes a file holding a secret (a token) with mode 0600 from its creation on, synced and
 * renamed over what was there (writeFileAtomic: a crash leaves the old file or the new one, and a
 * symlink at `path` is replaced, never written through). Throws DataDirError with one line
 * naming the file.
 */
export function writeSecretFile(path: string, text: string): void {
  try {
    writeFileAtomic(path, text, 0o600);
  } catch (e) {
    throw new DataDirError(errorText(e));
  }
}

export class DataDirError extends Error {
  override name = "DataDirError";
}

/** A locked data directory; `release()` unlocks it (the agent's last step on stop). */
export interface DataDirLock {
  readonly path: string;
  release(): void;
}

/**
 * Creates `path` if needed, owner-only (0700: the store and the Raft log hold the cluster CA's
 * key and token hashes; an existing directory is narrowed too), locks it for this process and
 * checks that it belongs to `node`. The store and Raft log files are made 0600 before SQLite
 * opens them (its -wal and -shm files take their mode). Throws DataDirError with one line
 * naming the fix when another agent holds it or it was made for another node name.
 */
export function openDataDir(path: string, node: string): DataDirLock {
  try {
    Deno.mkdirSync(path, { recursive: true, mode: 0o700 });
    Deno.chmodSync(path, 0o700);
  } catch (e) {
    throw new DataDirError(`cannot create --data-dir ${path}: ${errorText(e)}`);
  }
  const lockPath = `${path}/${LOCK_FILE}`;
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(lockPath, { read: true, write: true, create: true });
  } catch (e) {
    throw new DataDirError(`cannot open ${lockPath}: ${errorText(e)}`);
  }
  if (!lockWithin(file, LOCK_WAIT_MS)) {
    const holder = readHolder(file);
    file.close();
    throw new DataDirError(
      `--data-dir ${path} is in use by another berth agent${
        holder === null ? "" : ` (pid ${holder})`
      }; give each agent on a host its own --data-dir`,
    );
  }
  try {
    file.truncateSync(0);
    file.writeSync(new TextEncoder().encode(`${Deno.pid}\n`));
    checkNodeName(path, node);
    for (const f of [STORE_FILE, RAFT_FILE]) ownerOnly(`${path}/${f}`);
  } catch (e) {
    file.close();
    throw e;
  }
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      file.close(); // closing the file drops the lock
    },
  };
}

/**
 * How long a start waits for the lock. A lock just dropped can stay held for a moment by a
 * process forked elsewhere in this one (a child holds a copy of every descriptor until it
 * execs; the descriptor closes then), so a restart in the same process may find it held.
 */
export const LOCK_WAIT_MS = 1_000;

/** `tryLockSync(true)`, tried again every 20 ms for up to `waitMs`. */
export function lockWithin(
  file: { tryLockSync(exclusive: boolean): boolean },
  waitMs: number,
): boolean {
  const until = Date.now() + waitMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    if (file.tryLockSync(true)) return true;
    if (Date.now() >= until) return false;
    Atomics.wait(pause, 0, 0, 20);
  }
}

/** Creates the file at `path` if missing, and makes it 0600 either way. */
function ownerOnly(path: string): void {
  try {
    Deno.openSync(path, { write: true, create: true, mode: 0o600 }).close();
    Deno.chmodSync(path, 0o600);
  } catch (e) {
    throw new DataDirError(`cannot make ${path} owner-only: ${errorText(e)}`);
  }
}

function readHolder(file: Deno.FsFile): number | null {
  try {
    const buf = new Uint8Array(32);
    file.seekSync(0, Deno.SeekMode.Start);
    const n = file.readSync(buf) ?? 0;
    const text = new TextDecoder().decode(buf.subarray(0, n)).trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

function checkNodeName(path: string, node: string): void {
  const nodePath = `${path}/${NODE_FILE}`;
  let recorded: string;
  try {
    const bytes = Deno.readFileSync(nodePath);
    recorded = new TextDecoder().decode(bytes.subarray(0, NODE_FILE_BYTES_MAX)).trim();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new DataDirError(`cannot read ${nodePath}: ${errorText(e)}`);
    }
    recorded = "";
  }
  const member = clusterMember(path);
  // The cluster's name, when there is one, is the truth: the node file follows it.
  const owner = member?.name ?? recorded;
  if (owner !== "" && owner !== node) {
    throw new DataDirError(
      `--data-dir ${path} belongs to node "${owner}", not "${node}": start it with ` +
        `--node ${owner}, or give node "${node}" an empty --data-dir`,
    );
  }
  // Missing (a directory older than the file), empty (a first start cut off mid-write), or
  // written under another name than the cluster's before this check compared the two.
  if (recorded !== node) Deno.writeTextFileSync(nodePath, `${node}\n`);
}

/**
 * The member this directory's Raft log belongs to, with the name the cluster knows it by: the
 * Raft identity's id looked up in the store's replicated membership. Null for a directory that
 * never joined a cluster, or whose member the store does not list (removed, or not applied yet).
 */
function clusterMember(path: string): { id: number; name: string } | null {
  const identity = SqliteRaftStorage.readIdentity(`${path}/${RAFT_FILE}`);
  const storePath = `${path}/${STORE_FILE}`;
  if (identity === undefined || identity.id === 0 || !isFile(storePath)) return null;
  let store: Store;
  try {
    store = Store.open(storePath);
  } catch (e) {
    throw new DataDirError(`cannot read ${storePath}: ${errorText(e)}`);
  }
  try {
    // A member listed without its row (no address) has no recorded name, only `node-<id>`.
    const m = store.members().find((m) => m.id === identity.id && m.address !== "");
    return m === undefined ? null : { id: m.id, name: m.name };
  } finally {
    store.close();
  }
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
