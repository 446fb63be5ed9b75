/**
 * The process's open-file limit (RLIMIT_NOFILE): read it, and raise the soft limit to the hard
 * one at start (src/agent.ts), as nginx's `worker_rlimit_nofile` and systemd services commonly
 * do. Every proxied connection, UDP flow and Raft peer is a file descriptor; under systemd the
 * soft limit is 1024 by default while the hard one is far higher.
 *
 * @module
 */
import { libc } from "./_ffi_libc.ts";

/** RLIMIT_NOFILE in <sys/resource.h> (Linux). */
const RLIMIT_NOFILE = 7;

export interface FdLimit {
  soft: number;
  hard: number;
}

/** The limit from a `/proc/self/limits` text (`Max open files  SOFT  HARD  files`), or null. */
export function parseProcLimits(text: string): FdLimit | null {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(text);
  if (m === null) return null;
  const n = (v: string) => v === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(v);
  return { soft: n(m[1]!), hard: n(m[2]!) };
}

/** The current open-file limit, or null where it cannot be read (not Linux). */
export function openFileLimit(): FdLimit | null {
  try {
    return parseProcLimits(Deno.readTextFileSync("/proc/self/limits"));
  } catch {
    return null;
  }
}

/**
 * Raises the soft open-file limit to the hard one (through libc's setrlimit). Returns the limit
 * after, or why it stayed (no FFI, not Linux x86_64, the call failed).
 */
export function raiseOpenFileLimit(): FdLimit | { why: string } {
  const loaded = libc();
  if ("why" in loaded) return loaded;
  const c = loaded.libc;
  const buf = new BigUint64Array(2);
  const bytes = new Uint8Array(buf.buffer);
  if (c.getrlimit(RLIMIT_NOFILE, bytes) !== 0) return { why: "getrlimit failed" };
  if (buf[0]! < buf[1]!) {
    buf[0] = buf[1]!;
    if (c.setrlimit(RLIMIT_NOFILE, bytes) !== 0) return { why: "setrlimit failed" };
    if (c.getrlimit(RLIMIT_NOFILE, bytes) !== 0) return { why: "getrlimit failed" };
  }
  const n = (v: bigint) =>
    v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  return { soft: n(buf[0]!), hard: n(buf[1]!) };
}
