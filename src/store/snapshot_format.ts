/**
 * The store snapshot format, shared by a Raft snapshot sent to a lagging member, `berth snapshot
 * save` (GET /v1/snapshot) and `berth snapshot restore` (PUT /v1/snapshot, replicated in chunks);
 * their sizes all follow snapshot_limits.ts.
 *
 * A snapshot is a stream, never one blob: the 8-byte magic `BERTHSN2`, then frames, each a 4-byte
 * big-endian length and a msgpack body:
 *
 * - a header `{format, schema, kind, index}` (`kind` "raft": every table a replica needs,
 *   request-id dedupe table included; "user": nodes, instances, service_index and kv only;
 *   "secrets": the secret tables of store/table_classes.ts, only ever inside a sealed section);
 * - in a "user" snapshot saved with secrets, right after the header: sealed frames
 *   `{sealed: bytes}`, whose bytes joined are a "secrets" snapshot sealed with a passphrase
 *   (src/pki seal.ts), at most SEALED_BYTES_MAX;
 * - table frames `{t: table, rows: [...]}`, each about SNAPSHOT_FRAME_TARGET_BYTES (one row may
 *   exceed it; readers take any frame up to SNAPSHOT_FRAME_BYTES_MAX);
 * - a trailer `{end: true, rows: total}`, so a truncated stream is refused.
 *
 * Readers hold one frame at a time (at most SNAPSHOT_FRAME_BYTES_MAX) and check every row
 * against the schema (checkRow) before it touches a table.
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import { pack, RESET_BUFFER_MODE, unpack } from "msgpackr";
import { rules, validateCommand, validateInstance } from "./validate.ts";
import { SNAPSHOT_BYTES_MAX, SNAPSHOT_FRAME_BYTES_MAX } from "./snapshot_limits.ts";

export const SNAPSHOT_MAGIC = new TextEncoder().encode("BERTHSN2");
const FORMAT = "berth-store-snapshot";
/** The store's schema, which snapshots carry (2: instance health kept per source). */
export const SNAPSHOT_SCHEMA = 2;

export type SnapshotKind = "raft" | "user" | "secrets";

/** Largest sealed section of a user snapshot (the secret tables are small). */
export const SEALED_BYTES_MAX = 64 * 1024 * 1024;

export interface SnapshotHeader {
  kind: SnapshotKind;
  /** The store's applied index the snapshot is consistent at. */
  index: number;
}

/** A table frame, a piece of a sealed section, or the trailer. */
export type SnapshotFrame =
  | { t: string; rows: Record<string, unknown>[] }
  | { sealed: Uint8Array }
  | { end: true; rows: number };

type ColumnKind = "text" | "int" | "bytes" | "json";
/** Every snapshot table's columns, to check a snapshot row by row before it touches a table. */
export const SNAPSHOT_COLUMNS: Record<string, Record<string, ColumnKind>> = {
  meta: { key: "text", value: "int" },
  nodes: { name: "text", data: "json", create_index: "int", modify_index: "int" },
  instances: {
    id: "text",
    service: "text",
    node: "text",
    data: "json",
    create_index: "int",
    modify_index: "int",
  },
  service_index: { service: "text", idx: "int" },
  kv: {
    key: "text",
    value: "bytes",
    flags: "int",
    create_index: "int",
    modify_index: "int",
    lock_index: "int",
  },
  members: { id: "int", name: "text", address: "text", nonce: "text" },
  cluster: { key: "text", value: "json" },
  requests: { id: "text", idx: "int", result: "json" },
  restore_staging: { seq: "int", data: "bytes" },
  sessions: { id: "text", node: "text", data: "json", create_index: "int", modify_index: "int" },
  kv_locks: { key: "text", session: "text" },
  lock_delays: { key: "text", until_ms: "int" },
  acl_policies: {
    id: "text",
    name: "text",
    description: "text",
    rules: "text",
    datacenters: "json",
    create_index: "int",
    modify_index: "int",
  },
  acl_tokens: {
    accessor_id: "text",
    secret_hash: "text",
    description: "text",
    policies: "json",
    local: "int",
    create_time: "int",
    create_index: "int",
    modify_index: "int",
  },
  pki: { key: "text", value: "text" },
  join_tokens: { id: "text", hash: "text", data: "json" },
  certs: { serial: "text", node: "text", not_after: "int", revoked: "int", key: "text" },
  edge_certs: { name: "text", data: "json", is_default: "int" },
  acme_lease: { id: "int", term: "int", node: "text", since_ms: "int" },
  acme_accounts: { directory: "text", data: "json" },
  acme_names: { name: "text", data: "json", create_index: "int", modify_index: "int" },
  acme_challenges: { token: "text", name: "text", type: "text", key_auth: "text" },
};
/** Tables a user snapshot carries and a restore replaces (membership and request ids stay). */
export const USER_TABLES = ["nodes", "instances", "service_index", "kv"] as const;
/**
 * Tables a restore stages: the user tables, and the ACL tables and edge certificates that a
 * snapshot's sealed section brings when the restore has its passphrase
 * (store/table_classes.ts).
 */
export const STAGED_TABLES = [...USER_TABLES, "acl_policies", "acl_tokens", "edge_certs"] as const;
/** A restore under way stages a user snapshot's rows in tables named with this prefix. */
export const STAGING_PREFIX = "restore_";
for (const t of STAGED_TABLES) SNAPSHOT_COLUMNS[STAGING_PREFIX + t] = SNAPSHOT_COLUMNS[t]!;

/** Tables a Raft snapshot carries besides `meta` (everything a replica needs). */
export const RAFT_TABLES: readonly string[] = [
  ...USER_TABLES,
  "members",
  "cluster",
  "requests",
  "restore_staging",
  ...STAGED_TABLES.map((t) => STAGING_PREFIX + t),
  "sessions",
  "kv_locks",
  "lock_delays",
  "acl_policies",
  "acl_tokens",
  "pki",
  "join_tokens",
  "certs",
  "edge_certs",
  "acme_lease",
  "acme_accounts",
  "acme_names",
  "acme_challenges",
];

/** The magic and the header frame. */
export function encodeHeader(h: SnapshotHeader): Uint8Array {
  const frame = encodeFrame({ format: FORMAT, schema: SNAPSHOT_SCHEMA, ...h });
  const out = new Uint8Array(SNAPSHOT_MAGIC.byteLength + frame.byteLength);
  out.set(SNAPSHOT_MAGIC);
  out.set(frame, SNAPSHOT_MAGIC.byteLength);
  return out;
}

/** One frame: 4-byte big-endian length, then the msgpack body. */
export function encodeFrame(body: unknown): Uint8Array {
  // Copied out below, so packed from the start of msgpackr's buffer each time (RESET_BUFFER_MODE:
  // large frames would otherwise use it up and make it allocate a new one every few frames).
  const b = pack(body, RESET_BUFFER_MODE);
  const out = new Uint8Array(4 + b.byteLength);
  new DataView(out.buffer).setUint32(0, b.byteLength);
  out.set(b, 4);
  return out;
}

/** Where a SnapshotDecoder stands, to resume it later (a restore staged across log entries). */
export interface DecoderState {
  header?: SnapshotHeader;
  rows: number;
  ended: boolean;
  bytes: number;
  /** Bytes of sealed frames so far. */
  sealedBytes?: number;
}

/**
 * Reads a snapshot stream pushed in pieces of any size: checks the magic and the header, then
 * hands back each frame, its rows checked. `finish()` throws when the trailer never came.
 * Row values are views into the pushed bytes: use them before the next push.
 */
export class SnapshotDecoder {
  #st: DecoderState;
  /** Bytes of a frame not complete yet (or of the magic and header). */
  #buf: Uint8Array;
  /**
   * The buffer of ours that #buf's bytes were last gathered in, sized for the frame they begin:
   * the next pieces of that frame are copied in after them, so a frame that comes in many small
   * pieces (an HTTP body's 64 KiB) costs one buffer and one copy of each byte, not a new buffer
   * and a copy of the whole frame so far per piece.
   */
  #room: Uint8Array | null = null;

  constructor(state?: DecoderState, remainder?: Uint8Array) {
    this.#st = state === undefined ? { rows: 0, ended: false, bytes: 0 } : { ...state };
    this.#buf = remainder ?? new Uint8Array(0);
  }

  get header(): SnapshotHeader | undefined {
    return this.#st.header;
  }

  /** The state to resume from, with `remainder`. */
  get state(): DecoderState {
    return { ...this.#st };
  }

  /** Bytes of an unfinished frame. */
  get remainder(): Uint8Array {
    return this.#buf;
  }

  /** Frames completed by `piece`, rows checked; throws on anything malformed. */
  push(piece: Uint8Array): SnapshotFrame[] {
    return this.pushFrames(piece).map((f) => f.frame);
  }

  /**
   * Like `push`, each frame with its bytes as they came (length prefix and body, a view like the
   * row values), so a frame passed on unchanged need not be encoded again.
   */
  pushFrames(piece: Uint8Array): { frame: SnapshotFrame; bytes: Uint8Array }[] {
    this.#st.bytes += piece.byteLength;
    if (this.#st.bytes > SNAPSHOT_BYTES_MAX) {
      throw new Error(`restore: snapshot is over ${SNAPSHOT_BYTES_MAX} bytes`);
    }
    this.#buf = this.#buf.byteLength === 0 ? piece : this.#append(piece);
    const out: { frame: SnapshotFrame; bytes: Uint8Array }[] = [];
    let off = 0;
    if (this.#st.header === undefined) {
      if (!this.#magic(this.#buf)) return out;
      off = SNAPSHOT_MAGIC.byteLength;
      const h = this.#nextFrame(off);
      if (h === undefined) return out;
      off = h.end;
      this.#st.header = checkHeader(h.body);
    }
    for (;;) {
      const f = this.#nextFrame(off);
      if (f === undefined) break;
      out.push({ frame: this.#checkFrame(f.body), bytes: this.#buf.subarray(off, f.end) });
      off = f.end;
    }
    this.#buf = this.#buf.subarray(off);
    return out;
  }

  /** Throws unless the whole stream, trailer included, has been pushed. */
  finish(): void {
    if (this.#st.bytes === 0) throw new Error("restore: empty, not a berth store snapshot");
    if (this.#st.header === undefined || !this.#st.ended || this.#buf.byteLength > 0) {
      throw new Error("restore: snapshot is truncated");
    }
  }

  /**
   * #buf with `piece` after it: in #room when #buf ends there and the piece fits after it (bytes
   * past #buf were never handed out, so frames already returned keep theirs), else in a new
   * buffer of the frame's size once its length prefix is known.
   */
  #append(piece: Uint8Array): Uint8Array {
    const have = this.#buf;
    const room = this.#room;
    const size = have.byteLength + piece.byteLength;
    if (room !== null && have.buffer === room.buffer) {
      const at = have.byteOffset - room.byteOffset + have.byteLength;
      if (at + piece.byteLength <= room.byteLength) {
        room.set(piece, at);
        return room.subarray(at - have.byteLength, at + piece.byteLength);
      }
    }
    const next = new Uint8Array(Math.max(size, this.#frameBytes(have, piece)));
    next.set(have);
    next.set(piece, have.byteLength);
    this.#room = next;
    return next.subarray(0, size);
  }

  /**
   * Bytes from the start of `a` (then `b`) to the end of the frame under way (the magic and
   * header frame before the header): 0 while its length prefix is incomplete. At most a frame
   * over the limit's prefix is trusted (that frame is refused once read).
   */
  #frameBytes(a: Uint8Array, b: Uint8Array): number {
    const at = this.#st.header === undefined ? SNAPSHOT_MAGIC.byteLength : 0;
    if (a.byteLength + b.byteLength < at + 4) return 0;
    const byte = (i: number) => i < a.byteLength ? a[i]! : b[i - a.byteLength]!;
    const len = ((byte(at) << 24) >>> 0) + (byte(at + 1) << 16) + (byte(at + 2) << 8) +
      byte(at + 3);
    return at + 4 + Math.min(len, SNAPSHOT_FRAME_BYTES_MAX);
  }

  /** Whether `b` starts with the whole magic; throws as soon as it cannot. */
  #magic(b: Uint8Array): boolean {
    const n = Math.min(b.byteLength, SNAPSHOT_MAGIC.byteLength);
    for (let i = 0; i < n; i++) {
      if (b[i] !== SNAPSHOT_MAGIC[i]) {
        throw new Error("restore: not a berth store snapshot (no BERTHSN2 header)");
      }
    }
    return n === SNAPSHOT_MAGIC.byteLength;
  }

  /**
   * Reads the snapshot file at `path` frame by frame into one reused buffer, calling `onFrame`
   * with each checked frame (its values are views into that buffer: used before the next).
   */
  readFile(path: string, onFrame: (f: SnapshotFrame) => void): void {
    using file = Deno.openSync(path, { read: true });
    const buf = new Uint8Array(SNAPSHOT_FRAME_BYTES_MAX);
    const head = buf.subarray(0, SNAPSHOT_MAGIC.byteLength);
    const got = readFull(file, head);
    this.#st.bytes += got;
    if (got < head.byteLength || !this.#magic(head)) {
      throw new Error(
        got === 0 ? "restore: empty, not a berth store snapshot" : "restore: snapshot is truncated",
      );
    }
    for (;;) {
      const got = readFull(file, buf.subarray(0, 4));
      if (got === 0) break;
      if (got < 4) throw new Error("restore: snapshot is truncated");
      const len = new DataView(buf.buffer).getUint32(0);
      if (len > SNAPSHOT_FRAME_BYTES_MAX) {
        throw new Error(`restore: snapshot frame of ${len} bytes is over the frame limit`);
      }
      const body = buf.subarray(0, len);
      if (readFull(file, body) < len) throw new Error("restore: snapshot is truncated");
      this.#st.bytes += 4 + len;
      const decoded = decodeBody(body);
      if (this.#st.header === undefined) this.#st.header = checkHeader(decoded);
      else onFrame(this.#checkFrame(decoded));
    }
    this.finish();
  }

  #nextFrame(off: number): { body: unknown; end: number } | undefined {
    if (this.#buf.byteLength - off < 4) return undefined;
    const len = new DataView(this.#buf.buffer, this.#buf.byteOffset + off).getUint32(0);
    if (len > SNAPSHOT_FRAME_BYTES_MAX) {
      throw new Error(`restore: snapshot frame of ${len} bytes is over the frame limit`);
    }
    if (this.#buf.byteLength - off - 4 < len) return undefined;
    return { body: decodeBody(this.#buf.subarray(off + 4, off + 4 + len)), end: off + 4 + len };
  }

  #checkFrame(body: unknown): SnapshotFrame {
    if (this.#st.ended) throw new Error("restore: data after the snapshot's end");
    const f = body as Record<string, unknown> | null;
    if (typeof f !== "object" || f === null) throw new Error("restore: damaged snapshot frame");
    if (f.sealed instanceof Uint8Array && Object.keys(f).length === 1) {
      if (this.#st.header?.kind !== "user" || this.#st.rows > 0) {
        throw new Error("restore: a sealed section out of place");
      }
      this.#st.sealedBytes = (this.#st.sealedBytes ?? 0) + f.sealed.byteLength;
      if (this.#st.sealedBytes > SEALED_BYTES_MAX) {
        throw new Error(`restore: sealed section is over ${SEALED_BYTES_MAX} bytes`);
      }
      return { sealed: f.sealed };
    }
    if (f.end === true) {
      if (f.rows !== this.#st.rows) {
        throw new Error(
          `restore: snapshot ends after ${this.#st.rows} rows, its end says ${f.rows}`,
        );
      }
      this.#st.ended = true;
      return { end: true, rows: this.#st.rows };
    }
    const table = f.t;
    if (typeof table !== "string" || !(table in SNAPSHOT_COLUMNS) || !Array.isArray(f.rows)) {
      throw new Error(`restore: unknown snapshot table ${String(table).slice(0, 40)}`);
    }
    f.rows.forEach((r: unknown, n: number) => checkRow(table, r, this.#st.rows + n));
    this.#st.rows += f.rows.length;
    return { t: table, rows: f.rows as Record<string, unknown>[] };
  }
}

function checkHeader(body: unknown): SnapshotHeader {
  const h = body as Record<string, unknown> | null;
  if (h?.format !== FORMAT || h.schema !== SNAPSHOT_SCHEMA) {
    throw new Error("restore: not a berth store snapshot of this schema version");
  }
  const kinds: unknown[] = ["raft", "user", "secrets"];
  if (!kinds.includes(h.kind) || !Number.isSafeInteger(h.index)) {
    throw new Error("restore: damaged snapshot header");
  }
  return { kind: h.kind as SnapshotKind, index: h.index as number };
}

/** Checks one row of `table` against the schema; instances through validateInstance. */
export function checkRow(tableName: string, row: unknown, n: number): void {
  const columns = SNAPSHOT_COLUMNS[tableName]!;
  const table = tableName.startsWith(STAGING_PREFIX)
    ? tableName.slice(STAGING_PREFIX.length)
    : tableName;
  const where = `restore: ${tableName} row ${n}`;
  if (typeof row !== "object" || row === null) throw new Error(`${where} is not an object`);
  const r = row as Record<string, unknown>;
  for (const [col, kind] of Object.entries(columns)) {
    const v = r[col];
    const ok = kind === "text"
      ? typeof v === "string"
      : kind === "int"
      ? typeof v === "number" && Number.isSafeInteger(v)
      : kind === "bytes"
      ? v instanceof Uint8Array
      : typeof v === "string";
    if (!ok) throw new Error(`${where}: column ${col} is not ${kind}`);
  }
  for (const col of Object.keys(r)) {
    if (!(col in columns)) throw new Error(`${where}: unknown column ${col.slice(0, 40)}`);
  }
  try {
    if (table === "instances") {
      const spec = validateInstance(JSON.parse(String(r.data)), `${where} data`);
      if (spec.id !== r.id || spec.service !== r.service || spec.node !== r.node) {
        throw new Error("id, service or node differ from the row's columns");
      }
    } else if (table === "nodes") {
      const d = JSON.parse(String(r.data)) as {
        address?: unknown;
        status?: unknown;
        meta?: unknown;
      };
      if (typeof d?.address !== "string" || (d.status !== "alive" && d.status !== "down")) {
        throw new Error("address or status missing");
      }
      validateCommand({ type: "node.register", name: r.name, address: d.address, meta: d.meta });
      const checks = (d as { checks?: unknown }).checks;
      if (checks !== undefined) rules.registeredChecks(checks, "checks");
    } else if (table === "sessions") {
      const spec = validateCommand({ type: "session.create", session: JSON.parse(String(r.data)) });
      if (spec.type !== "session.create" || spec.session.id !== r.id) {
        throw new Error("id differs from the row's column");
      }
    } else if (table === "acl_policies") {
      validateCommand({
        type: "acl.policy.set",
        policy: { ...r, datacenters: JSON.parse(String(r.datacenters)) },
      });
    } else if (table === "acl_tokens") {
      const ids = JSON.parse(String(r.policies)) as unknown[];
      if (!Array.isArray(ids)) throw new Error("policies is not a list");
      validateCommand({
        type: "acl.token.set",
        token: {
          accessorId: r.accessor_id,
          secretHash: r.secret_hash,
          description: r.description,
          policies: ids.map((id) => ({ id })),
          local: r.local === 1,
          createTimeMs: r.create_time,
        },
      });
    } else if (columns.value === "json" || columns.result === "json") {
      JSON.parse(String(r.value ?? r.result));
    }
  } catch (e) {
    throw new Error(`${where}: ${errorText(e)}`);
  }
}

function decodeBody(b: Uint8Array): unknown {
  try {
    return unpack(b);
  } catch (e) {
    throw new Error(`restore: damaged snapshot frame (${errorText(e)})`);
  }
}

function readFull(file: Deno.FsFile, into: Uint8Array): number {
  let off = 0;
  while (off < into.byteLength) {
    const n = file.readSync(into.subarray(off));
    if (n === null) break;
    off += n;
  }
  return off;
}
