/**
 * The API's TLS certificate and key: read from the files `--http-tls-cert` and `--http-tls-key`
 * name, or handed over as PEM (`--http-tls auto`), and checked before the listener takes them,
 * so a wrong file stops the agent with one line naming it instead of a handshake error later.
 *
 * @module
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { errorText } from "../lib/error_text.ts";

/** A certificate (chain: leaf first) and its private key, both PEM. */
export interface TlsMaterial {
  certPem: string;
  keyPem: string;
}

/** Largest certificate or key file read (a chain of a few certificates is far smaller). */
export const TLS_FILE_BYTES_MAX = 1 << 20;

/**
 * Reads and checks the PEM files at `certPath` and `keyPath`; throws one line naming the file
 * that is missing, unreadable, not PEM, or whose key does not match the certificate.
 */
export function readTlsFiles(certPath: string, keyPath: string): TlsMaterial {
  const certPem = readPem(certPath, "--http-tls-cert");
  const keyPem = readPem(keyPath, "--http-tls-key");
  checkTlsMaterial({ certPem, keyPem }, {
    cert: `--http-tls-cert ${certPath}`,
    key: `--http-tls-key ${keyPath}`,
  });
  return { certPem, keyPem };
}

/**
 * Checks that `m.certPem` starts with a certificate, `m.keyPem` is a private key, and that the
 * key belongs to the certificate; `label` names each in the message.
 */
export function checkTlsMaterial(
  m: TlsMaterial,
  label: { cert: string; key: string } = { cert: "certificate", key: "key" },
): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(m.certPem);
  } catch (e) {
    throw new Error(`${label.cert}: not a PEM certificate (${errorText(e)})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(m.keyPem);
  } catch (e) {
    throw new Error(`${label.key}: not a PEM private key (${errorText(e)})`);
  }
  if (!cert.checkPrivateKey(key)) {
    throw new Error(`${label.key}: the key does not belong to the certificate in ${label.cert}`);
  }
}

/**
 * The CA certificates in the PEM file at `path` (BERTH_CACERT), for a client to trust; throws one
 * line when it cannot be read or holds no certificate.
 */
export function readCaFile(path: string, label = "BERTH_CACERT"): string {
  const pem = readPem(path, label);
  try {
    new X509Certificate(pem);
  } catch (e) {
    throw new Error(`${label} ${path}: not a PEM certificate (${errorText(e)})`);
  }
  return pem;
}

function readPem(path: string, flag: string): string {
  let bytes: Uint8Array;
  try {
    const info = Deno.statSync(path);
    if (!info.isFile) throw new Error("not a file");
    if (info.size > TLS_FILE_BYTES_MAX) throw new Error(`over ${TLS_FILE_BYTES_MAX} bytes`);
    bytes = Deno.readFileSync(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : errorText(e);
    throw new Error(`${flag} ${path}: cannot read (${why})`);
  }
  const text = new TextDecoder().decode(bytes);
  if (!text.includes("-----BEGIN ")) throw new Error(`${flag} ${path}: not a PEM file`);
  return text;
}
