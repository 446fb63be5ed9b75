/**
 * `berth snapshot save` and `restore` as streams, so neither the agent nor the client holds a
 * whole snapshot (sizes: src/store/snapshot_limits.ts).
 *
 * Save: the store's "user" snapshot (services, nodes, KV; no membership, no request ids; the
 * secret tables only sealed, when asked: snapshot_secrets.ts) read piece by piece inside one
 * read transaction, pulled by the HTTP response.
 *
 * Restore: the request body, past the secrets gate (snapshot_secrets.ts), is cut into
 * RESTORE_CHUNK_BYTES chunks, proposed as
 * `restore.chunk` after a `restore.begin`, SNAPSHOT_WINDOW_CHUNKS proposals in flight at most
 * (ChunkWindow: one that reached the log out of turn, e.g. across a busy leader or a leader
 * change, is sent again in order). Every replica checks each chunk's rows as it applies it
 * and stages them (store/restore_staging.ts), so a bad file fails at its first bad chunk, with
 * 400. `restore.commit` then carries the chunk count and size, and the store swaps the staged
 * tables in within that one apply on every replica, or changes nothing. A failure on the way
 * proposes `restore.abort`. A file of the old one-blob format (up to 3 MiB,
 * what that format could restore) is re-encoded as a stream first (store/snapshot_legacy.ts).
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import { ClusterError, type Proposed } from "../cluster/mod.ts";
import {
  type Command,
  isLegacySnapshot,
  LEGACY_SNAPSHOT_BYTES_MAX,
  legacySnapshotStream,
  RESTORE_CHUNK_BYTES,
  SNAPSHOT_BYTES_MAX,
  SNAPSHOT_WINDOW_CHUNKS,
  type Store,
} from "../store/mod.ts";
import { badRequest, HttpError } from "./http_error.ts";
import { exportCertKeys, gateSecrets, type SecretsOutcome } from "./snapshot_secrets.ts";
import { sealWithPassphrase, type SecretBox } from "../pki/mod.ts";
import { concatBytes } from "../lib/bytes.ts";

/**
 * The store's user snapshot as a response body stream (one piece per pull); with `passphrase`,
 * its secret tables sealed inside, the certificate keys opened with `secrets` first
 * (snapshot_secrets.ts).
 */
export function userSnapshotStream(
  store: Store,
  opts: { passphrase?: string; secrets?: SecretBox } = {},
): ReadableStream<Uint8Array> {
  const { passphrase } = opts;
  const src = store.snapshotSource("user", {
    seal: passphrase === undefined
      ? undefined
      : (b) => sealWithPassphrase(exportCertKeys(b, opts.secrets), passphrase),
  });
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      try {
        const piece = src.next();
        if (piece === null) controller.close();
        else controller.enqueue(piece);
      } catch (e) {
        src.close();
        controller.error(e);
      }
    },
    cancel() {
      src.close();
    },
  }, { highWaterMark: 1 });
}

/** What a restore reports. */
export interface RestoreResult {
  index: number;
  bytes: number;
  chunks: number;
  /** What became of the snapshot's sealed secrets. */
  secrets: SecretsOutcome;
}

/**
 * Replicates the snapshot read from `body` through `propose` (see the module comment). A file
 * that is not a valid snapshot rejects with a 400 HttpError; a bigger one than
 * SNAPSHOT_BYTES_MAX with 413.
 */
export async function restoreFromStream(
  input: ReadableStream<Uint8Array>,
  propose: (c: Command) => Promise<Proposed>,
  opts: { passphrase?: string; secrets?: SecretBox } = {},
): Promise<RestoreResult> {
  const gate = gateSecrets(await upgradeLegacy(input), opts.passphrase, {
    box: opts.secrets,
  });
  const body = gate.stream;
  const id = crypto.randomUUID();
  const must = async (c: Command) => {
    const p = await propose(c);
    if (!p.result.ok) throw badRequest(p.result.error ?? `${c.type} failed`);
    return p;
  };
  await must({ type: "restore.begin", id });
  const chunks = new ChunkWindow(id, propose);
  let seq = 0;
  let bytes = 0;
  const buf = new Uint8Array(RESTORE_CHUNK_BYTES);
  let fill = 0;
  const flush = async () => {
    if (fill === 0) return;
    const data = buf.slice(0, fill);
    fill = 0;
    await chunks.send(seq++, data);
  };
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      if (bytes > SNAPSHOT_BYTES_MAX) {
        throw new HttpError(413, `snapshot is over the ${SNAPSHOT_BYTES_MAX}-byte limit`);
      }
      for (let off = 0; off < value.byteLength;) {
        const n = Math.min(value.byteLength - off, buf.byteLength - fill);
        buf.set(value.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === buf.byteLength) await flush();
      }
    }
    await flush();
    await chunks.drain();
    const secrets = gate.outcome();
    const p = await must({
      type: "restore.commit",
      id,
      chunks: seq,
      bytes,
      ...(secrets === "restored" ? { acl: true as const, certs: true as const } : {}),
    });
    return { index: p.index, bytes, chunks: seq, secrets };
  } catch (e) {
    await chunks.settled();
    await reader.cancel().catch(() => {});
    await propose({ type: "restore.abort", id }).catch(() => {});
    throw e;
  } finally {
    reader.releaseLock();
  }
}

/** Rounds of sending the unacknowledged chunks again before a restore gives up. */
export const RESTORE_RESENDS_MAX = 8;

/**
 * The `restore.chunk` proposals of one restore: up to SNAPSHOT_WINDOW_CHUNKS in flight while
 * every one lands in turn. A chunk can land after a later one (its proposal was retried across a
 * busy leader or a leader change): the later one is then refused with `restoreNext`, and a
 * proposal that failed retryably may or may not have applied. Either way the window drains and
 * the chunks not known applied are sent again in order, one at a time from then on (the store
 * takes a chunk it already has as done), at most RESTORE_RESENDS_MAX rounds. Any other refusal
 * ends the restore.
 */
class ChunkWindow {
  readonly #id: string;
  readonly #propose: (c: Command) => Promise<Proposed>;
  /** seq → data of the chunks not known to be applied, in seq order. */
  readonly #unacked = new Map<number, Uint8Array>();
  readonly #inflight = new Set<Promise<void>>();
  #window = SNAPSHOT_WINDOW_CHUNKS;
  #resend = false;
  #resends = 0;
  #failure: unknown;

  constructor(id: string, propose: (c: Command) => Promise<Proposed>) {
    this.#id = id;
    this.#propose = propose;
  }

  /** Sends chunk `seq`; resolves when the window has room again (throws the first failure). */
  async send(seq: number, data: Uint8Array): Promise<void> {
    this.#unacked.set(seq, data);
    this.#start(seq, data);
    while (this.#inflight.size >= this.#window && this.#failure === undefined) {
      await Promise.race(this.#inflight);
    }
    await this.#maybeResend();
  }

  /** Resolves once every chunk sent is applied (throws the first failure). */
  async drain(): Promise<void> {
    await this.settled();
    await this.#maybeResend();
  }

  /** Resolves once nothing is in flight. */
  async settled(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.all(this.#inflight);
  }

  #start(seq: number, data: Uint8Array): void {
    const p: Promise<void> = this.#propose({ type: "restore.chunk", id: this.#id, seq, data })
      .then((r) => {
        if (r.result.ok) this.#unacked.delete(seq);
        else if (r.result.restoreNext !== undefined) this.#resend = true;
        else throw badRequest(r.result.error ?? "restore.chunk failed");
      }, (e) => {
        if (!retryable(e)) throw e;
        this.#resend = true;
      })
      .catch((e) => {
        this.#failure ??= e;
      })
      .finally(() => this.#inflight.delete(p));
    this.#inflight.add(p);
  }

  async #maybeResend(): Promise<void> {
    while (this.#failure === undefined && this.#resend) {
      await this.settled();
      if (this.#failure !== undefined) break;
      if (++this.#resends > RESTORE_RESENDS_MAX) {
        this.#failure = new HttpError(
          503,
          `restore: chunks still out of order after ${RESTORE_RESENDS_MAX} resends; retry`,
        );
        break;
      }
      this.#resend = false;
      this.#window = 1;
      for (const [seq, data] of [...this.#unacked]) {
        this.#start(seq, data);
        await this.settled();
        if (this.#failure !== undefined || this.#resend) break;
      }
    }
    if (this.#failure !== undefined) throw this.#failure;
  }
}

/** Whether a failed proposal may succeed when sent again (the cluster's retryable codes). */
function retryable(e: unknown): boolean {
  return e instanceof ClusterError &&
    (e.code === "no_leader" || e.code === "not_leader" || e.code === "busy" ||
      e.code === "timeout");
}

/**
 * The body itself, or, when it holds a snapshot of the old one-blob format (at most
 * LEGACY_SNAPSHOT_BYTES_MAX), that snapshot re-encoded as a stream.
 */
async function upgradeLegacy(
  body: ReadableStream<Uint8Array>,
): Promise<ReadableStream<Uint8Array>> {
  const reader = body.getReader();
  const first = await reader.read();
  if (first.done || !isLegacySnapshot(first.value)) {
    // Not the old format: the same bytes, first piece included, go on as they came.
    let head: Uint8Array | undefined = first.done ? undefined : first.value;
    return new ReadableStream<Uint8Array>({
      async pull(k) {
        if (head !== undefined) {
          k.enqueue(head);
          head = undefined;
          return;
        }
        const r = await reader.read();
        if (r.done) k.close();
        else k.enqueue(r.value);
      },
      cancel: (why) => reader.cancel(why),
    }, { highWaterMark: 0 });
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  for (let r: ReadableStreamReadResult<Uint8Array> = first; !r.done; r = await reader.read()) {
    size += r.value.byteLength;
    if (size > LEGACY_SNAPSHOT_BYTES_MAX) {
      await reader.cancel().catch(() => {});
      throw badRequest(
        `restore: a snapshot of the old format is over its ${LEGACY_SNAPSHOT_BYTES_MAX}-byte limit`,
      );
    }
    parts.push(r.value);
  }
  const whole = concatBytes(parts, size);
  let converted: Uint8Array;
  try {
    converted = legacySnapshotStream(whole);
  } catch (e) {
    throw badRequest(errorText(e));
  }
  return new ReadableStream<Uint8Array>({
    start(k) {
      k.enqueue(converted);
      k.close();
    },
  });
}
