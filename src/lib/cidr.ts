/**
 * IP networks in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, a plain address as its own /32
 * or /128) and lists of them matched against client addresses. An IPv4-mapped IPv6 address
 * (`::ffff:10.1.2.3`, how a dual-stack socket reports an IPv4 client) is an IPv4 address here,
 * in a list and as a client alike. A leaf module.
 *
 * @module
 */
import { ipBytes, ipText } from "./ip_bytes.ts";

/** One network: its address with the host bits cleared, and its prefix length. */
export interface Cidr {
  readonly family: 4 | 6;
  /** 4 or 16 bytes, host bits zero. */
  readonly bytes: Uint8Array;
  readonly bits: number;
}

/** What a CIDR looks like, for messages. */
export const CIDR_EXPECTED = "an IP address or CIDR (10.0.0.0/8, 2001:db8::/32)";

/** 4 bytes of an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), else null. */
function mappedV4(b: Uint8Array): Uint8Array | null {
  if (b.length !== 16 || b[10] !== 0xff || b[11] !== 0xff) return null;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return null;
  return b.slice(12);
}

/** An address's bytes, IPv4-mapped IPv6 as IPv4 (4 bytes); null when it is no IP address. */
export function clientBytes(ip: string): Uint8Array | null {
  const b = ipBytes(ip);
  if (b === null) return null;
  return mappedV4(b) ?? b;
}

/**
 * `ADDRESS[/BITS]` → the network (host bits cleared); null when it is none. An IPv4-mapped
 * IPv6 network of at least 96 bits is the IPv4 network it maps (`::ffff:10.0.0.0/104` is
 * `10.0.0.0/8`).
 */
export function parseCidr(text: string): Cidr | null {
  const m = /^([0-9A-Fa-f:.]{2,45})(?:\/(\d{1,3}))?$/.exec(text.trim());
  if (m === null) return null;
  const raw = ipBytes(m[1]!);
  if (raw === null) return null;
  const v6Bits = raw.length * 8;
  let bits = m[2] === undefined ? v6Bits : Number(m[2]);
  if (bits > v6Bits || (m[2] !== undefined && m[2].length > 1 && m[2].startsWith("0"))) {
    return null;
  }
  let bytes = raw;
  const v4 = mappedV4(raw);
  if (v4 !== null && bits >= 96) {
    bytes = v4;
    bits -= 96;
  }
  const masked = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    masked[i] = bytes[i]! & (0xff << (8 - keep)) & 0xff;
  }
  return { family: bytes.length === 4 ? 4 : 6, bytes: masked, bits };
}

/** The canonical text of a network: `10.0.0.0/8`, `2001:db8::/32`. */
export function cidrText(c: Cidr): string {
  return `${ipText(c.bytes, c.family)}/${c.bits}`;
}

/** Whether address bytes (4 or 16, as `clientBytes` gives) fall in `c`. */
export function cidrHas(c: Cidr, b: Uint8Array): boolean {
  if (b.length !== c.bytes.length) return false;
  const whole = c.bits >> 3;
  for (let i = 0; i < whole; i++) if (b[i] !== c.bytes[i]) return false;
  const rest = c.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (b[whole]! & mask) === c.bytes[whole];
}

/** A list of networks; `has(ip)` says whether an address falls in any. */
export class CidrList {
  readonly cidrs: readonly Cidr[];

  constructor(cidrs: readonly Cidr[]) {
    this.cidrs = cidrs;
  }

  /** Whether `ip` (IPv4, IPv6, IPv4-mapped IPv6) is in one of the networks; false for no IP. */
  has(ip: string): boolean {
    const b = clientBytes(ip);
    if (b === null) return false;
    for (const c of this.cidrs) if (cidrHas(c, b)) return true;
    return false;
  }
}

/** Canonical CIDR texts (a flag config.ts checked) as a list; none → null; a bad one throws. */
export function cidrListOf(cidrs: readonly string[]): CidrList | null {
  if (cidrs.length === 0) return null;
  return new CidrList(cidrs.map((text) => {
    const cidr = parseCidr(text);
    if (cidr === null) throw new Error(`"${text}" is not a CIDR`);
    return cidr;
  }));
}
