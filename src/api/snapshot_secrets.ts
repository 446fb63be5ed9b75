/**
 * The secrets of a user snapshot (README, "Security"; the tables: store/table_classes.ts).
 *
 * Save: with `?include-secrets=true` and a passphrase, the snapshot carries the secret tables in a
 * sealed section (`sealWithPassphrase`), right after its header.
 *
 * Restore: the member that receives the file passes it through `gateSecrets` before proposing any
 * chunk. Only the user tables go on in the clear; any other table in the file is dropped, so
 * ACL tokens cannot be slipped in unsealed. The sealed section, when there is one:
 * - with the passphrase: opened (a wrong passphrase fails the restore before its first chunk:
 *   nothing changes); its ACL policies and tokens go on, and the commit replaces the cluster's
 *   ACL tables with them. The CA and the join tokens in it are never restored: a cluster keeps
 *   its own;
 * - without: dropped; the cluster keeps its ACL tables.
 * A passphrase for a snapshot without a sealed section changes nothing (outcome `none`).
 *
 * @module
 */
import { concatBytes } from "../lib/bytes.ts";
import { errorText } from "../lib/error_text.ts";
import { OPEN_FAILED, openWithPassphrase } from "../pki/mod.ts";
import {
  encodeFrame,
  encodeHeader,
  SECRET_TABLES_RESTORED,
  SnapshotDecoder,
  type SnapshotFrame,
  USER_TABLES,
} from "../store/mod.ts";
import { badRequest, HttpError } from "./http_error.ts";

/** The request header that carries the passphrase of a snapshot's sealed section. */
export const PASSPHRASE_HEADER = "X-Berth-Snapshot-Passphrase";
/** The restore's answer header: `restored`, `kept` (sealed section not opened) or `none`. */
export const SECRETS_HEADER = "X-Berth-Snapshot-Secrets";

/** What a restore did with the snapshot's sealed section. */
export type SecretsOutcome = "restored" | "kept" | "none";

/** The passphrase header's value: undefined when absent; 400 when empty or too long. */
export function passphraseOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (header === "") throw badRequest(`${PASSPHRASE_HEADER} is empty`);
  if (header.length > 1024) throw badRequest(`${PASSPHRASE_HEADER} is over 1024 characters`);
  return header;
}

const PASSED_ON: readonly string[] = [...USER_TABLES];
const RESTORED_SECRETS: readonly string[] = SECRET_TABLES_RESTORED;

/**
 * `body` as the restore should replicate it (see the module comment); `outcome()` tells, once
 * the stream has ended, what became of the sealed section. Malformed input fails the stream
 * with a 400 HttpError.
 */
export function gateSecrets(
  body: ReadableStream<Uint8Array>,
  passphrase: string | undefined,
): { stream: ReadableStream<Uint8Array>; outcome: () => SecretsOutcome } {
  const dec = new SnapshotDecoder();
  const sealed: Uint8Array[] = [];
  let outcome: SecretsOutcome = "none";
  let headerSent = false;
  /** Whether the sealed section (if any) has been dealt with: it must come before any table. */
  let sealedDone = false;
  let rows = 0;
  const reader = body.getReader();

  const table = (f: { t: string; rows: Record<string, unknown>[] }): Uint8Array => {
    rows += f.rows.length;
    return encodeFrame({ t: f.t, rows: f.rows });
  };
  const openSealed = (): Uint8Array[] => {
    sealedDone = true;
    if (sealed.length === 0) return [];
    if (passphrase === undefined) {
      outcome = "kept";
      return [];
    }
    let plain: Uint8Array;
    try {
      plain = openWithPassphrase(concatBytes(sealed), passphrase);
    } catch (e) {
      const why = errorText(e) === OPEN_FAILED ? OPEN_FAILED : errorText(e);
      throw badRequest(`restore: the snapshot's secrets: ${why}; nothing restored`);
    }
    const inner = new SnapshotDecoder();
    const out: Uint8Array[] = [];
    for (const f of inner.push(plain)) {
      if ("t" in f && RESTORED_SECRETS.includes(f.t)) out.push(table(f));
    }
    inner.finish();
    if (inner.header?.kind !== "secrets") {
      throw badRequest("restore: the snapshot's sealed section is not a secrets snapshot");
    }
    outcome = "restored";
    return out;
  };
  const forward = (f: SnapshotFrame): Uint8Array[] => {
    if ("sealed" in f) {
      sealed.push(f.sealed.slice());
      return [];
    }
    const out = sealedDone ? [] : openSealed();
    if ("end" in f) out.push(encodeFrame({ end: true, rows }));
    else if (PASSED_ON.includes(f.t)) out.push(table(f));
    return out;
  };

  const stream = new ReadableStream<Uint8Array>({
    async pull(k) {
      try {
        for (;;) {
          const r = await reader.read();
          if (r.done) {
            dec.finish();
            k.close();
            return;
          }
          const frames = dec.push(r.value);
          const out: Uint8Array[] = [];
          if (!headerSent && dec.header !== undefined) {
            if (dec.header.kind === "secrets") {
              throw badRequest("restore: a secrets snapshot is restored only inside a user one");
            }
            headerSent = true;
            out.push(encodeHeader(dec.header));
          }
          for (const f of frames) out.push(...forward(f));
          if (out.length > 0) {
            k.enqueue(concatBytes(out));
            return;
          }
        }
      } catch (e) {
        await reader.cancel().catch(() => {});
        k.error(e instanceof HttpError ? e : badRequest(errorText(e)));
      }
    },
    cancel: (why) => reader.cancel(why),
  }, { highWaterMark: 0 });
  return { stream, outcome: () => outcome };
}
