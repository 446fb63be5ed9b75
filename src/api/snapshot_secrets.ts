/**
 * The secrets of a user snapshot (README, "Security"; the tables: store/table_classes.ts).
 *
 * Save: with `?include-secrets=true` and a passphrase, the snapshot carries the secret tables in a
 * sealed section (`sealWithPassphrase`), right after its header. The keys of the edge
 * certificates, sealed under this cluster's key in the store, are opened inside that section
 * (`exportCertKeys`: `keyPem` in each row instead of `keySealed`), so another cluster can use
 * them: the passphrase seal is what protects them there.
 *
 * Restore: the member that receives the file passes it through `gateSecrets` before proposing any
 * chunk. Only the user tables go on in the clear; any other table in the file is dropped, so
 * ACL tokens cannot be slipped in unsealed. The sealed section, when there is one:
 * - with the passphrase: opened (a wrong passphrase fails the restore before its first chunk:
 *   nothing changes); its ACL policies and tokens go on, and so do its edge certificates, each
 *   key checked against its certificate and sealed again under THIS cluster's key before it goes
 *   on (`importCertKeys`: no key ever reaches the Raft log in clear); the commit replaces the
 *   cluster's ACL tables and certificates with them. The CA and the join tokens in it are never
 *   restored: a cluster keeps its own;
 * - without: dropped; the cluster keeps its ACL tables and certificates.
 * A passphrase for a snapshot without a sealed section changes nothing (outcome `none`).
 *
 * @module
 */
import { concatBytes } from "../lib/bytes.ts";
import { errorText } from "../lib/error_text.ts";
import {
  checkCertAndKey,
  edgeKeyContext,
  NoClusterKeyError,
  OPEN_FAILED,
  openEdgeKey,
  openWithPassphrase,
  type SecretBox,
} from "../pki/mod.ts";
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
const CERTS = "edge_certs";

type Row = Record<string, unknown>;

/** The `data` JSON of an edge_certs row, or a one-line error naming the row. */
function certData(r: Row): Record<string, unknown> {
  try {
    const d = JSON.parse(String(r.data));
    if (typeof d === "object" && d !== null && !Array.isArray(d)) return d;
  } catch { /* below */ }
  throw new Error(`certificate ${String(r.name).slice(0, 80)}: malformed row`);
}

/**
 * Whether every edge certificate's key opens with `box` (a save with secrets checks this before
 * it answers, so a failure is a status, not a cut-off body): undefined, or why not.
 */
export function certKeysProblem(
  certs: readonly { name: string; keySealed: string }[],
  box: SecretBox | undefined,
): string | undefined {
  if (certs.length === 0) return undefined;
  if (box === undefined) return "this agent keeps no cluster key to open the certificate keys";
  for (const c of certs) {
    try {
      openEdgeKey(box, c);
    } catch (e) {
      return `certificate ${c.name}: ${errorText(e)}`;
    }
  }
  return undefined;
}

/**
 * A "secrets" snapshot (what `sealWithPassphrase` is about to seal) with the edge certificates'
 * keys opened with `box`: `keyPem` in each row's data instead of `keySealed`. Throws naming a
 * certificate whose key does not open.
 */
export function exportCertKeys(plain: Uint8Array, box: SecretBox | undefined): Uint8Array {
  return mapCertRows(plain, (r) => {
    const { keySealed, ...rest } = certData(r);
    if (box === undefined) throw new Error("this agent keeps no cluster key");
    const name = String(r.name);
    const keyPem = openEdgeKey(box, { name, keySealed: String(keySealed) });
    return { ...r, data: JSON.stringify({ ...rest, keyPem }) };
  });
}

/** `plain` (a whole snapshot) with `fn` applied to every edge_certs row. */
function mapCertRows(plain: Uint8Array, fn: (r: Row) => Row): Uint8Array {
  const dec = new SnapshotDecoder();
  const frames = dec.push(plain);
  dec.finish();
  const out: Uint8Array[] = [encodeHeader(dec.header!)];
  for (const f of frames) {
    out.push(encodeFrame("t" in f && f.t === CERTS ? { t: f.t, rows: f.rows.map(fn) } : f));
  }
  return concatBytes(out);
}

/**
 * An edge_certs row of an opened sealed section as this cluster keeps it: the key (`keyPem`,
 * checked against the certificate) sealed under this cluster's key. A row without `keyPem`
 * keeps its sealed key only when it opens here (a snapshot of this same cluster). The
 * certificate's facts (names, dates, issuer, serial, fingerprint) are those of the checked PEM,
 * never the row's own.
 */
function importCertRow(r: Row, box: SecretBox | undefined): Row {
  const { keyPem, ...rest } = certData(r);
  const name = String(r.name);
  if (box === undefined) {
    throw new HttpError(
      503,
      "restore: this agent keeps no cluster key to seal the certificate keys",
    );
  }
  try {
    const sealedHere = keyPem === undefined;
    const key = sealedHere
      ? openEdgeKey(box, { name, keySealed: String(rest.keySealed) })
      : String(keyPem);
    // Any notAfter passes (nowMs 0): a backup of an expired certificate restores as it was.
    const checked = checkCertAndKey(String(rest.certPem), key, { nowMs: 0 });
    const keySealed = sealedHere
      ? rest.keySealed
      : box.seal(new TextEncoder().encode(checked.keyPem), edgeKeyContext(name));
    const data = { ...rest, ...checked.facts, certPem: checked.certPem, keySealed };
    return { ...r, data: JSON.stringify(data) };
  } catch (e) {
    if (e instanceof NoClusterKeyError) throw new HttpError(503, `restore: ${errorText(e)}; retry`);
    throw badRequest(
      `restore: certificate ${name.slice(0, 80)}: ${errorText(e)}; nothing restored`,
    );
  }
}
const RESTORED_SECRETS: readonly string[] = SECRET_TABLES_RESTORED;

/**
 * `body` as the restore should replicate it (see the module comment); `outcome()` tells, once
 * the stream has ended, what became of the sealed section. Malformed input fails the stream
 * with a 400 HttpError.
 */
export function gateSecrets(
  body: ReadableStream<Uint8Array>,
  passphrase: string | undefined,
  opts: { box?: SecretBox } = {},
): { stream: ReadableStream<Uint8Array>; outcome: () => SecretsOutcome } {
  const { box } = opts;
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
      if (!("t" in f) || !RESTORED_SECRETS.includes(f.t)) continue;
      out.push(
        table(f.t === CERTS ? { t: f.t, rows: f.rows.map((r) => importCertRow(r, box)) } : f),
      );
    }
    inner.finish();
    if (inner.header?.kind !== "secrets") {
      throw badRequest("restore: the snapshot's sealed section is not a secrets snapshot");
    }
    outcome = "restored";
    return out;
  };
  /** What goes on for frame `f` (`bytes` as it came: a user table's frame goes on unchanged). */
  const forward = (f: SnapshotFrame, bytes: Uint8Array): Uint8Array[] => {
    if ("sealed" in f) {
      sealed.push(f.sealed.slice());
      return [];
    }
    const out = sealedDone ? [] : openSealed();
    if ("end" in f) out.push(encodeFrame({ end: true, rows }));
    else if (PASSED_ON.includes(f.t)) {
      rows += f.rows.length;
      out.push(bytes);
    }
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
          const frames = dec.pushFrames(r.value);
          const out: Uint8Array[] = [];
          if (!headerSent && dec.header !== undefined) {
            if (dec.header.kind === "secrets") {
              throw badRequest("restore: a secrets snapshot is restored only inside a user one");
            }
            headerSent = true;
            out.push(encodeHeader(dec.header));
          }
          for (const f of frames) out.push(...forward(f.frame, f.bytes));
          if (out.length > 0) {
            k.enqueue(out.length === 1 ? out[0]! : concatBytes(out));
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
