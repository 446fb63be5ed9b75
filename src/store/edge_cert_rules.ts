/**
 * The rules of the edge-certificate commands (`cert.put`, `cert.rm`, `clusterkey.set`; applied
 * by edge_certs.ts), called by validateCommand on every replica, and by a restore's commit on the
 * certificates it staged. Every field's shape is checked, so a bad command is refused with one
 * line and never reaches a table; an error never quotes a key. Facts about a certificate (names,
 * issuer, times) come in the command, read by the proposer (src/pki/edge_cert.ts), so no replica
 * parses X.509 while applying.
 *
 * @module
 */
import { CERT_NAMES_MAX as EDGE_CERT_NAMES_MAX, isCertDnsName } from "../pki/mod.ts";
import type { Row } from "./db.ts";
import { CommandError, fail, int, obj } from "./rule_basics.ts";
import type { Command, EdgeCert } from "./types.ts";

/** Most edge certificates kept; a put of a new name past it is refused. */
export const EDGE_CERTS_MAX = 10_000;
/** Longest certificate chain (PEM text; above what the API accepts, as it re-encodes the PEM). */
export const EDGE_CERT_PEM_CHARS_MAX = 96 * 1024;
/** Longest sealed key (an RSA-4096 PKCS#8 PEM sealed is about 4.5 KiB). */
export const EDGE_KEY_SEALED_CHARS_MAX = 16 * 1024;
/** Longest issuer text. */
export const EDGE_CERT_ISSUER_CHARS_MAX = 1024;

/** A certificate's management name: what `berth cert add --name` takes and the API path holds. */
export const EDGE_CERT_NAME_RE = /^[A-Za-z0-9*][A-Za-z0-9._*-]{0,252}$/;
const CHAIN_RE =
  /^(-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\r?\n?)+$/;
const SEALED_RE = /^bs\d+:[0-9a-f]{16}:[A-Za-z0-9+/]*={0,2}$/;
const HEX64_RE = /^[0-9a-f]{64}$/;
const SERIAL_RE = /^[0-9a-f]{1,64}$/;
// deno-lint-ignore no-control-regex
const CONTROL_RE = /[\x00-\x1f\x7f]/;
const TYPES = new Set(["cert.put", "cert.rm", "clusterkey.set"]);

/** Whether `type` is one of the commands this module checks. */
export function isEdgeCertCommand(type: unknown): boolean {
  return typeof type === "string" && TYPES.has(type);
}

/** Why `name` cannot name an edge certificate, or undefined when it can. */
export function edgeCertNameProblem(name: string): string | undefined {
  return EDGE_CERT_NAME_RE.test(name)
    ? undefined
    : "1 to 253 of A-Z a-z 0-9 . _ - *, not starting with . _ -";
}

function certName(x: unknown, path: string): string {
  if (typeof x !== "string") fail(path, "a certificate name", x);
  const problem = edgeCertNameProblem(x);
  if (problem !== undefined) fail(path, problem, x);
  return x;
}

/** A field that must match `re`; its value is never shown (it may be a secret). */
function shaped(x: unknown, path: string, re: RegExp, max: number, want: string): string {
  if (typeof x !== "string" || x.length > max || !re.test(x)) {
    throw new CommandError(`${path}: expected ${want}`, want);
  }
  return x;
}

function edgeCert(x: unknown, path: string): EdgeCert {
  const o = obj(x, path);
  if (!Array.isArray(o.names) || o.names.length === 0 || o.names.length > EDGE_CERT_NAMES_MAX) {
    fail(`${path}.names`, `a list of 1 to ${EDGE_CERT_NAMES_MAX} names`, o.names);
  }
  const names = o.names.map((n, i) => {
    if (typeof n !== "string" || !isCertDnsName(n)) {
      fail(`${path}.names[${i}]`, "a lower-case DNS name (may start with *.)", n);
    }
    return n;
  });
  if (typeof o.issuer !== "string" || o.issuer.length > EDGE_CERT_ISSUER_CHARS_MAX) {
    fail(`${path}.issuer`, `text of at most ${EDGE_CERT_ISSUER_CHARS_MAX} characters`, o.issuer);
  }
  if (CONTROL_RE.test(o.issuer)) fail(`${path}.issuer`, "one line of text", o.issuer);
  const notBefore = int(o.notBefore, `${path}.notBefore`, 0, Number.MAX_SAFE_INTEGER);
  const notAfter = int(o.notAfter, `${path}.notAfter`, notBefore, Number.MAX_SAFE_INTEGER);
  if (o.source !== "manual" && o.source !== "acme") {
    fail(`${path}.source`, '"manual" or "acme"', o.source);
  }
  if (typeof o.isDefault !== "boolean") fail(`${path}.isDefault`, "true or false", o.isDefault);
  if (typeof o.serial !== "string" || !SERIAL_RE.test(o.serial)) {
    fail(`${path}.serial`, "1 to 64 lower-case hex digits", o.serial);
  }
  if (typeof o.fingerprint !== "string" || !HEX64_RE.test(o.fingerprint)) {
    fail(`${path}.fingerprint`, "64 lower-case hex digits", o.fingerprint);
  }
  return {
    name: certName(o.name, `${path}.name`),
    names,
    certPem: shaped(
      o.certPem,
      `${path}.certPem`,
      CHAIN_RE,
      EDGE_CERT_PEM_CHARS_MAX,
      `PEM certificates, at most ${EDGE_CERT_PEM_CHARS_MAX} characters`,
    ),
    // Never a key in clear: only the cluster key's sealed text passes.
    keySealed: shaped(
      o.keySealed,
      `${path}.keySealed`,
      SEALED_RE,
      EDGE_KEY_SEALED_CHARS_MAX,
      "a key sealed under the cluster key (bs1:…)",
    ),
    issuer: o.issuer,
    notBefore,
    notAfter,
    source: o.source,
    isDefault: o.isDefault,
    serial: o.serial,
    fingerprint: o.fingerprint,
  };
}

/** Checks an edge-certificate command (`o.type` passed isEdgeCertCommand). */
export function validateEdgeCertCommand(o: Record<string, unknown>, path: string): Command {
  switch (o.type) {
    case "cert.put":
      return { type: "cert.put", cert: edgeCert(o.cert, `${path}.cert`) };
    case "cert.rm":
      return { type: "cert.rm", name: certName(o.name, `${path}.name`) };
    case "clusterkey.set":
      if (typeof o.fingerprint !== "string" || !HEX64_RE.test(o.fingerprint)) {
        fail(`${path}.fingerprint`, "64 lower-case hex digits", o.fingerprint);
      }
      return { type: "clusterkey.set", fingerprint: o.fingerprint };
    default:
      return fail(`${path}.type`, "cert.put, cert.rm or clusterkey.set", o.type);
  }
}

/**
 * A restore's staged certificates (restore_edge_certs), checked by the rules of `cert.put`, at
 * most one default and EDGE_CERTS_MAX: undefined when they may replace the live ones, else why
 * not (one line naming the certificate).
 */
export function stagedEdgeCertsProblem(sql: { all(q: string): Row[] }): string | undefined {
  const rows = sql.all("SELECT name, data, is_default FROM restore_edge_certs");
  if (rows.length > EDGE_CERTS_MAX) return `${rows.length} certificates, at most ${EDGE_CERTS_MAX}`;
  let defaults = 0;
  for (const r of rows) {
    try {
      edgeCert(
        { ...JSON.parse(String(r.data)), name: r.name, isDefault: r.is_default !== 0 },
        "cert",
      );
    } catch (e) {
      return `certificate ${String(r.name).slice(0, 80)}: ${e instanceof Error ? e.message : e}`;
    }
    if (r.is_default !== 0) defaults++;
  }
  return defaults > 1 ? `${defaults} certificates are the default, at most one may be` : undefined;
}
