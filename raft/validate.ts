/**
 * Shape checks for messages decoded from untrusted network frames.
 *
 * @module
 */
import type { ConfState, Entry, EntryType, Message, MessageType, Snapshot } from "./types.ts";
import { NETWORK_MESSAGE_TYPES } from "./types.ts";

/** Upper bound on entries in one message (a frame with more is rejected). */
export const MAX_ENTRIES_PER_MESSAGE = 1 << 20;
/** Upper bound on members named in a snapshot's ConfState. */
export const MAX_CONF_MEMBERS = 1 << 16;

const NETWORK_TYPES = new Set<string>(NETWORK_MESSAGE_TYPES);
const ENTRY_TYPES = new Set<string>(["normal", "confChange"]);

function fail(path: string, why: string, v: unknown): never {
  let shown: string;
  try {
    shown = typeof v === "bigint" ? `${v}n` : JSON.stringify(v) ?? String(v);
  } catch {
    shown = String(v);
  }
  if (shown.length > 60) shown = shown.slice(0, 57) + "...";
  throw new Error(`invalid raft message: ${path} ${why} (got ${shown})`);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
}

function index(x: unknown, path: string): number {
  if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) {
    fail(path, "must be a non-negative safe integer", x);
  }
  return x;
}

function nodeId(x: unknown, path: string): number {
  if (typeof x !== "number" || !Number.isSafeInteger(x) || x <= 0) {
    fail(path, "must be a positive safe integer node id", x);
  }
  return x;
}

function bytes(x: unknown, path: string): Uint8Array {
  if (!(x instanceof Uint8Array)) fail(path, "must be a Uint8Array", x);
  return x;
}

function optionalBytes(x: unknown, path: string): Uint8Array | undefined {
  return x === undefined || x === null ? undefined : bytes(x, path);
}

function entry(x: unknown, path: string): Entry {
  if (!isObject(x)) fail(path, "must be an object", x);
  const type = x.type;
  if (typeof type !== "string" || !ENTRY_TYPES.has(type)) {
    fail(`${path}.type`, 'must be "normal" or "confChange"', type);
  }
  return {
    term: index(x.term, `${path}.term`),
    index: index(x.index, `${path}.index`),
    type: type as EntryType,
    data: bytes(x.data, `${path}.data`),
  };
}

function ids(x: unknown, path: string): number[] {
  if (!Array.isArray(x)) fail(path, "must be an array", x);
  if (x.length > MAX_CONF_MEMBERS) {
    fail(path, `has more than ${MAX_CONF_MEMBERS} members`, x.length);
  }
  return x.map((v, i) => nodeId(v, `${path}[${i}]`));
}

function confState(x: unknown, path: string): ConfState {
  if (!isObject(x)) fail(path, "must be an object", x);
  return { voters: ids(x.voters, `${path}.voters`), learners: ids(x.learners, `${path}.learners`) };
}

function snapshot(x: unknown, path: string): Snapshot {
  if (!isObject(x)) fail(path, "must be an object", x);
  const md = x.metadata;
  if (!isObject(md)) fail(`${path}.metadata`, "must be an object", md);
  return {
    metadata: {
      index: index(md.index, `${path}.metadata.index`),
      term: index(md.term, `${path}.metadata.term`),
      confState: confState(md.confState, `${path}.metadata.confState`),
    },
    data: bytes(x.data, `${path}.data`),
  };
}

/**
 * Checks that `x` (e.g. decoded from a msgpack frame) is a well-formed network {@link Message}
 * and returns a fresh copy containing only known fields. Throws an Error naming the first bad
 * field otherwise. Local-only message types (MsgHup, MsgBeat, ...) are rejected.
 */
export function validateMessage(x: unknown): Message {
  if (!isObject(x)) fail("message", "must be an object", x);
  const type = x.type;
  if (typeof type !== "string" || !NETWORK_TYPES.has(type)) {
    fail("type", "must be a network message type", type);
  }
  if (typeof x.reject !== "boolean") fail("reject", "must be a boolean", x.reject);
  if (!Array.isArray(x.entries)) fail("entries", "must be an array", x.entries);
  if (x.entries.length > MAX_ENTRIES_PER_MESSAGE) {
    fail("entries", `has more than ${MAX_ENTRIES_PER_MESSAGE} items`, x.entries.length);
  }
  const m: Message = {
    type: type as MessageType,
    from: nodeId(x.from, "from"),
    to: nodeId(x.to, "to"),
    term: index(x.term, "term"),
    logTerm: index(x.logTerm, "logTerm"),
    index: index(x.index, "index"),
    entries: x.entries.map((e, i) => entry(e, `entries[${i}]`)),
    commit: index(x.commit, "commit"),
    reject: x.reject,
    rejectHint: index(x.rejectHint, "rejectHint"),
  };
  if (x.snapshot !== undefined && x.snapshot !== null) {
    m.snapshot = snapshot(x.snapshot, "snapshot");
  }
  const ctx = optionalBytes(x.context, "context");
  if (ctx !== undefined) m.context = ctx;
  if (m.type === "MsgProp" && m.entries.length === 0) {
    fail("entries", "must not be empty for MsgProp", m.entries);
  }
  if (m.type === "MsgSnap" && m.snapshot === undefined) {
    fail("snapshot", "is required for MsgSnap", undefined);
  }
  // Entries of a MsgApp must be contiguous after (index, logTerm) with non-decreasing terms.
  if (m.type === "MsgApp") {
    let prevTerm = m.logTerm;
    m.entries.forEach((e, i) => {
      if (e.index !== m.index + 1 + i) {
        fail(`entries[${i}].index`, `must be ${m.index + 1 + i}`, e.index);
      }
      if (e.term < prevTerm) fail(`entries[${i}].term`, `must be >= ${prevTerm}`, e.term);
      if (e.term > m.term) fail(`entries[${i}].term`, `must be <= message term ${m.term}`, e.term);
      prevTerm = e.term;
    });
  }
  return m;
}
