/**
 * The cluster key: 32 random bytes every member holds in `<data-dir>/cluster-key` (0600), made
 * by `--bootstrap`, handed to a joiner with its enrollment answer and fetched from a member by
 * one that lacks it. It never enters the Raft log or the store: what it seals there (the private
 * keys of edge certificates) is useless to whoever copies `raft.db` or `store.db` alone.
 *
 * `SecretBox` is what the rest of berth sees: AES-256-GCM under the cluster key, a fresh IV per
 * seal, and a `context` (e.g. `edge-cert:NAME`) bound as additional data, so a sealed value
 * cannot be moved to another row. The sealed text, version 1:
 *
 *     bs1:<key id: 16 hex>:<base64 of IV (12 bytes) | ciphertext | GCM tag (16 bytes)>
 *
 * The key id (the start of the key's fingerprint) lets `open` tell "sealed under another
 * cluster key" from "damaged". The AAD is `bs1\0<context>`, so a version cannot be swapped.
 * The key file is one line of 64 hex digits.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { Buffer } from "node:buffer";
import { concatBytes } from "../lib/bytes.ts";
import { errorText } from "../lib/error_text.ts";
import { writeFileAtomic } from "../lib/atomic_file.ts";

/** The key file in the data directory. */
export const CLUSTER_KEY_FILE = "cluster-key";
export const CLUSTER_KEY_BYTES = 32;
/** Hex digits of the key id a sealed value names. */
const KEY_ID_CHARS = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = "bs1";
/** Longest context (a name and its kind). */
export const CONTEXT_CHARS_MAX = 512;
const SEALED_RE = /^bs(\d+):([0-9a-f]{16}):([A-Za-z0-9+/]*={0,2})$/;
const KEY_FILE_RE = /^([0-9a-f]{64})\r?\n?$/;

/** Encrypts small secrets for the replicated store under the cluster key (module comment). */
export interface SecretBox {
  /** AES-256-GCM under the cluster key; `context` is bound as AAD (e.g. "edge-cert:NAME"). */
  seal(plain: Uint8Array, context: string): string;
  /** Throws a clear Error on a wrong key or context, damaged or cut-short data. */
  open(sealed: string, context: string): Uint8Array;
}

function checkContext(context: string): void {
  if (context === "" || context.length > CONTEXT_CHARS_MAX) {
    throw new Error(`secret box context: expected 1 to ${CONTEXT_CHARS_MAX} characters`);
  }
}

function aad(context: string): Uint8Array {
  return new TextEncoder().encode(`${VERSION}\0${context}`);
}

/** One cluster key and the seal it makes. */
export class ClusterKey implements SecretBox {
  readonly #key: Uint8Array;
  /** sha256 (hex) of a label and the key: names the key (in logs, in Raft) without revealing it. */
  readonly fingerprint: string;

  constructor(key: Uint8Array) {
    if (key.byteLength !== CLUSTER_KEY_BYTES) {
      throw new Error(`cluster key: expected ${CLUSTER_KEY_BYTES} bytes, got ${key.byteLength}`);
    }
    this.#key = key.slice();
    this.fingerprint = createHash("sha256").update("berth cluster key\0").update(this.#key)
      .digest("hex");
  }

  /** A new random key. */
  static generate(): ClusterKey {
    return new ClusterKey(new Uint8Array(randomBytes(CLUSTER_KEY_BYTES)));
  }

  /** The key from its file text (64 hex digits, one line); throws naming what is wrong. */
  static parse(text: string): ClusterKey {
    const m = KEY_FILE_RE.exec(text);
    if (m === null) throw new Error(`expected one line of ${CLUSTER_KEY_BYTES * 2} hex digits`);
    return new ClusterKey(new Uint8Array(Buffer.from(m[1]!, "hex")));
  }

  /** The start of the fingerprint a sealed value carries. */
  get id(): string {
    return this.fingerprint.slice(0, KEY_ID_CHARS);
  }

  /** The key file's text. Handle like the key itself: never log it. */
  text(): string {
    return `${Buffer.from(this.#key).toString("hex")}\n`;
  }

  /** The raw key, for sending to a member (enrollment, key fetch) over mutual TLS only. */
  bytes(): Uint8Array {
    return this.#key.slice();
  }

  seal(plain: Uint8Array, context: string): string {
    checkContext(context);
    const iv = new Uint8Array(randomBytes(IV_BYTES));
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    cipher.setAAD(aad(context));
    const body = concatBytes([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}:${this.id}:${Buffer.from(body).toString("base64")}`;
  }

  open(sealed: string, context: string): Uint8Array {
    checkContext(context);
    const m = typeof sealed === "string" ? SEALED_RE.exec(sealed) : null;
    if (m === null) throw new Error(`${context}: not a sealed value (expected ${VERSION}:…)`);
    if (`bs${m[1]}` !== VERSION) {
      throw new Error(`${context}: sealed value version ${m[1]} is not known to this berth`);
    }
    if (m[2] !== this.id) {
      throw new Error(
        `${context}: sealed under another cluster key (key ${m[2]}, this member's is ${this.id})`,
      );
    }
    const body = new Uint8Array(Buffer.from(m[3]!, "base64"));
    if (body.byteLength < IV_BYTES + TAG_BYTES) {
      throw new Error(`${context}: sealed value is cut short`);
    }
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.#key, body.subarray(0, IV_BYTES));
      decipher.setAAD(aad(context));
      decipher.setAuthTag(body.subarray(body.byteLength - TAG_BYTES));
      return concatBytes([
        decipher.update(body.subarray(IV_BYTES, body.byteLength - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new Error(
        `${context}: cannot open the sealed value (other context, damaged or cut short)`,
      );
    }
  }
}

/** The box cannot seal or open: this member has no cluster key yet, or not the cluster's. */
export class NoClusterKeyError extends Error {
  override name = "NoClusterKeyError";
}

/**
 * The member's secret box: empty until its cluster key is known (a joiner before enrollment, a
 * member from before cluster keys until it has fetched one), then that key for good. Seal and
 * open throw a clear error while empty, and for good once the replicated state names another
 * key than the one it holds (`expect`): a member never seals with a key the others lack.
 */
export class ClusterKeyBox implements SecretBox {
  #key: ClusterKey | undefined;
  /** The fingerprint the replicated state names, once known. */
  #expected: string | undefined;
  readonly #waiters = new Set<(k: ClusterKey) => void>();

  constructor(key?: ClusterKey) {
    this.#key = key;
  }

  /** The key, or undefined while this member has none. */
  key(): ClusterKey | undefined {
    return this.#key;
  }

  /** Whether it holds the key the replicated state names (false while that is not known). */
  get ready(): boolean {
    return this.#key !== undefined && this.#key.fingerprint === this.#expected;
  }

  /**
   * The fingerprint the replicated state names (`clusterkey.set`); from then on a key that is
   * not that one is refused by `set`, and a key held already that is not it makes seal and open
   * throw, naming both.
   */
  expect(fingerprint: string): void {
    this.#expected = fingerprint;
  }

  /** Sets the key once; setting the same key again is a no-op, another one throws. */
  set(key: ClusterKey): void {
    if (this.#expected !== undefined && key.fingerprint !== this.#expected) {
      throw new Error(
        `cluster key ${key.id} is not the cluster's (${this.#expected.slice(0, key.id.length)})`,
      );
    }
    if (this.#key !== undefined) {
      if (this.#key.fingerprint === key.fingerprint) return;
      throw new Error(`this member already has cluster key ${this.#key.id}, not ${key.id}`);
    }
    this.#key = key;
    for (const fn of this.#waiters) fn(key);
    this.#waiters.clear();
  }

  /** Calls `fn` once the key is set (at once when it is). */
  whenSet(fn: (k: ClusterKey) => void): void {
    if (this.#key !== undefined) fn(this.#key);
    else this.#waiters.add(fn);
  }

  seal(plain: Uint8Array, context: string): string {
    return this.#need().seal(plain, context);
  }

  open(sealed: string, context: string): Uint8Array {
    return this.#need().open(sealed, context);
  }

  #need(): ClusterKey {
    const key = this.#key;
    if (key === undefined) {
      throw new NoClusterKeyError(
        "this member has no cluster key yet (it fetches one from a member)",
      );
    }
    if (this.#expected !== undefined && key.fingerprint !== this.#expected) {
      throw new NoClusterKeyError(
        `this member's cluster key ${key.id} is not the cluster's ` +
          `${this.#expected.slice(0, key.id.length)}: move its ${CLUSTER_KEY_FILE} file away ` +
          "and restart it to fetch the cluster's",
      );
    }
    return key;
  }
}

/**
 * The key in `dir`'s key file, or undefined when there is none; throws naming a bad file. A
 * file that group or others may read or write (a copy restored from a backup, say) is refused,
 * as sshd refuses such a private key: the key opens every stored certificate key.
 */
export function loadClusterKey(dir: string): ClusterKey | undefined {
  const path = `${dir}/${CLUSTER_KEY_FILE}`;
  let text: string;
  let mode: number | null;
  try {
    text = Deno.readTextFileSync(path);
    mode = Deno.statSync(path).mode;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`cannot read ${path}: ${errorText(e)}`);
  }
  if (mode !== null && (mode & 0o077) !== 0) {
    throw new Error(
      `${path} is readable or writable by others (mode 0${(mode & 0o777).toString(8)}); ` +
        `it holds the cluster key: run chmod 600 ${path}`,
    );
  }
  try {
    return ClusterKey.parse(text);
  } catch (e) {
    throw new Error(`${path}: ${errorText(e)}`);
  }
}

/** Writes `key` to `dir`'s key file (0600, atomically). */
export function saveClusterKey(dir: string, key: ClusterKey): void {
  writeFileAtomic(`${dir}/${CLUSTER_KEY_FILE}`, key.text(), 0o600);
}

/** The key in `dir`, else a new one written there (bootstrap). */
export function loadOrCreateClusterKey(dir: string): ClusterKey {
  const found = loadClusterKey(dir);
  if (found !== undefined) return found;
  const key = ClusterKey.generate();
  saveClusterKey(dir, key);
  return key;
}
