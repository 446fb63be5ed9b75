/**
 * Value parsers of the agent's DNS flags that are more than a number or an address:
 * `--datacenter NAME` and `--dns-service-ttl NAME=D,…`. Like the parsers of flags.ts they throw an
 * Error saying what is wrong with the value, never what was expected (src/config.ts adds that).
 * A leaf module.
 *
 * @module
 */
import { parseDuration } from "./duration.ts";
import { isServiceName } from "./service_name.ts";

/** Labels of berth's DNS name space a datacenter name would be confused with. */
const RESERVED_LABELS = ["service", "node", "addr"];

/** Largest TTL a DNS answer may carry here, seconds (as `--dns-ttl`). */
export const DNS_TTL_MAX_S = 86_400;

/** `dc1` → `dc1`: one DNS label (lower case, digits, `-`, `_`), as Consul names datacenters. */
export function parseDatacenter(text: string): string {
  if (text === "") throw new Error("empty");
  if (text.length > 63) throw new Error(`${text.length} characters, more than 63`);
  const bad = /[^a-z0-9_-]/.exec(text);
  if (bad !== null) throw new Error(`has ${JSON.stringify(bad[0])}`);
  if (!/^[a-z0-9]/.test(text)) {
    throw new Error("starts with a character other than a letter or digit");
  }
  if (RESERVED_LABELS.includes(text)) throw new Error(`"${text}" is a label of berth's DNS names`);
  return text;
}

/**
 * `web=30s,*=5s` → lower-cased service name (or `*`) → whole seconds. Items are separated by
 * commas (a repeated flag arrives joined that way); empty items are skipped.
 */
export function parseServiceTtls(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const raw of text.split(",")) {
    const item = raw.trim();
    if (item === "") continue;
    const eq = item.indexOf("=");
    if (eq < 0) throw new Error(`"${item}" has no '=' between a service name and a TTL`);
    const name = item.slice(0, eq).trim();
    const ttl = item.slice(eq + 1).trim();
    if (name !== "*" && !isServiceName(name)) {
      throw new Error(`"${name}" is neither * nor a service name (letters, digits, - or _)`);
    }
    let ms: number;
    try {
      ms = parseDuration(ttl);
    } catch (e) {
      throw new Error(`${name}=${ttl}: ${(e as Error).message}`);
    }
    if (ms % 1000 !== 0) throw new Error(`${name}=${ttl}: not whole seconds`);
    if (ms / 1000 > DNS_TTL_MAX_S) throw new Error(`${name}=${ttl}: more than ${DNS_TTL_MAX_S}s`);
    const key = name.toLowerCase();
    if (out.has(key)) throw new Error(`${name} is given twice`);
    out.set(key, ms / 1000);
  }
  return out;
}
