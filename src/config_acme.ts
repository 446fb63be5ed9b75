/**
 * The `--acme-*` flags (README: ACME): parsed into AcmeConfig by src/config.ts, which owns the
 * sources (flags, env, file, defaults) and the one-line messages: a parser here throws what is
 * wrong with the value, and loadConfig() puts the input's label and the expected form around it.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import { isOrderableName } from "./acme/names.ts";
import { errorText } from "./lib/error_text.ts";
import { parseBool } from "./lib/flags.ts";

export interface AcmeConfig {
  /** `--acme-directory`: the CA's directory URL. */
  directory: string;
  /** `--acme-email`: the account's contact, "" for none. */
  email: string;
  /** `--acme-ca-cert`, read at start: the PEM certificates trusted for the CA; null: the system's. */
  caCerts: string[] | null;
  /** `--acme-all`: every routed host, not only services with `berth.tls=acme`. */
  all: boolean;
  /** `--acme-domains`: only names in these domains are ordered; empty: any routed name. */
  domains: string[];
}

/** A flag's value from loadConfig()'s strongest source (or its default), parsed by `parse`. */
export type FlagGetter = <T>(name: string, parse: (v: string) => T) => T;

/** The `--acme-*` flags; `readFile` reads `--acme-ca-cert` (default: Deno.readTextFileSync). */
export function acmeConfig(get: FlagGetter, readFile?: (path: string) => string): AcmeConfig {
  return {
    directory: get("acme-directory", parseAcmeDirectory),
    email: get("acme-email", parseAcmeEmail),
    caCerts: get("acme-ca-cert", (path) => path === "" ? null : readCaCerts(path, readFile)),
    all: get("acme-all", parseBool),
    domains: get("acme-domains", parseAcmeDomains),
  };
}

/** `--acme-email`: an address, or "" for none. */
function parseAcmeEmail(v: string): string {
  if (v !== "" && !/^[^\s@<>,;:"]+@[^\s@<>,;:"]+\.[^\s@<>,;:"]+$/.test(v)) {
    throw new Error("not an email address");
  }
  if (v.length > 254) throw new Error("longer than 254 characters");
  return v;
}

/**
 * `--acme-domains A,B`: DNS names of two labels or more (lower-cased, a trailing dot dropped);
 * "" for none (any routed name).
 */
function parseAcmeDomains(v: string): string[] {
  if (v.trim() === "") return [];
  const out: string[] = [];
  for (const raw of v.split(",")) {
    const d = raw.trim().toLowerCase().replace(/\.$/, "");
    if (d === "") throw new Error("an empty name");
    if (!isOrderableName(d)) {
      throw new Error(`${JSON.stringify(d.slice(0, 80))} is not a DNS name of two labels or more`);
    }
    if (!out.includes(d)) out.push(d);
  }
  return out;
}

/** `--acme-directory`: an absolute https:// URL (http:// only for a CA on a loopback address). */
function parseAcmeDirectory(v: string): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new Error("not a URL");
  }
  const loopback = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/.test(u.hostname);
  if (u.protocol !== "https:" && !(u.protocol === "http:" && loopback)) {
    throw new Error("not https:// (http:// only on a loopback address)");
  }
  return v;
}

/** `--acme-ca-cert FILE`: the PEM certificates in it (at least one, each one parsing). */
function readCaCerts(
  path: string,
  readFile: (path: string) => string = Deno.readTextFileSync,
): string[] {
  let text: string;
  try {
    text = readFile(path);
  } catch (e) {
    throw new Error(`cannot read: ${errorText(e)}`);
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) throw new Error("no PEM certificate in it");
  for (const pem of pems) {
    try {
      new X509Certificate(pem);
    } catch {
      throw new Error("a certificate in it does not parse");
    }
  }
  return pems.map((p) => `${p}\n`);
}
