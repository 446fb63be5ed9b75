/**
 * IP addresses as DNS labels: the hex form of `.addr.` names (Consul's) and one spelling per
 * address, the key of the zone's reverse (PTR) names (zone.ts).
 *
 * @module
 */
import { isIPv4 } from "node:net";
import { intern } from "../lib/intern.ts";
import { ipBytes } from "./wire.ts";

/** `10.0.0.1` → `0a000001`; IPv6 → 32 hex digits (Consul's `.addr.` form); null for a hostname. */
export function ipToHex(address: string): string | null {
  const bytes = ipBytes(address);
  if (bytes === null) return null;
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Inverse of ipToHex; null when the label is not 8 or 32 hex digits. */
export function hexToIp(hex: string): string | null {
  if (!/^([0-9a-f]{8}|[0-9a-f]{32})$/.test(hex)) return null;
  const bytes = hex.match(/../g)!.map((h) => parseInt(h, 16));
  if (bytes.length === 4) return bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(":");
}

/**
 * One spelling per IP address (the reverse names' key): an IPv4 literal as it is, IPv6 as
 * hexToIp writes it; null for a hostname.
 */
export function canonicalIp(address: string): string | null {
  if (isIPv4(address)) return address;
  const hex = ipToHex(address);
  return hex === null ? null : intern(hexToIp(hex)!);
}
