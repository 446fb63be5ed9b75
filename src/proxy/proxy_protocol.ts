/**
 * The PROXY protocol (HAProxy's, versions 1 and 2), pure: `parseProxyHeader` reads the header
 * a load balancer in front sends at the start of a connection (the client's address and port,
 * and the address it connected to), `buildProxyHeader` makes the one berth sends to instances
 * that ask for it (`berth.proxy-protocol=v1|v2`). The socket side is proxy_protocol_in.ts.
 *
 * - v1: one text line `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` (or `PROXY UNKNOWN…\r\n`), at
 *   most 107 bytes with its CRLF.
 * - v2: the 12-byte signature, version/command (2 and LOCAL or PROXY), family/transport (UNSPEC,
 *   INET, INET6, UNIX; UNSPEC, STREAM, DGRAM), the length of the rest, the addresses, then TLVs
 *   (skipped). LOCAL (a health check of the balancer itself), UNSPEC and UNIX carry no client
 *   address: the connection's own is used.
 *
 * A header is refused (`ProxyHeaderError`) as soon as a byte shows it cannot be one: a wrong
 * first byte or signature, a v1 line without CRLF within 107 bytes or with a bad field, an
 * unknown version, command or family, a v2 length over `PROXY_V2_BYTES_MAX` or too short for
 * its addresses.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { isIPv4, isIPv6 } from "node:net";
import { ipBytes, ipText } from "../lib/ip_bytes.ts";

/** The longest v1 header, CRLF included. */
export const PROXY_V1_BYTES_MAX = 107;
/** The longest v2 header accepted (16-byte head + addresses + TLVs); more is refused. */
export const PROXY_V2_BYTES_MAX = 4096;

/** The v2 signature. */
export const PROXY_V2_SIGNATURE = Uint8Array.of(
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
);
const V1_PREFIX = Buffer.from("PROXY ", "latin1");

/** One end of a connection. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** A parsed header; `source`/`dest` null: no address given (LOCAL, UNKNOWN, UNSPEC, UNIX). */
export interface ProxyHeader {
  readonly version: 1 | 2;
  readonly source: Endpoint | null;
  readonly dest: Endpoint | null;
}

/** A header that cannot be one; the message says why (for a rare log line). */
export class ProxyHeaderError extends Error {
  override name = "ProxyHeaderError";
}

/** What `parseProxyHeader` found: more bytes needed, or the header and its length in bytes. */
export type ParseResult = "more" | { header: ProxyHeader; length: number };

/**
 * Reads a PROXY header (v1 or v2, told by the first byte) at the start of `buf`: "more" when
 * the bytes so far may still become one, else the header and how many bytes it took (the rest
 * is the connection's data). Throws ProxyHeaderError as soon as it cannot be one.
 */
export function parseProxyHeader(buf: Uint8Array): ParseResult {
  if (buf.length === 0) return "more";
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf);
  if (buf[0] === PROXY_V2_SIGNATURE[0]) return parseV2(buf);
  throw new ProxyHeaderError("no PROXY header (the connection must start with one)");
}

function parseV1(buf: Uint8Array): ParseResult {
  const n = Math.min(buf.length, V1_PREFIX.length);
  for (let i = 0; i < n; i++) {
    if (buf[i] !== V1_PREFIX[i]) {
      throw new ProxyHeaderError("no PROXY header (the connection must start with one)");
    }
  }
  const window = buf.subarray(0, PROXY_V1_BYTES_MAX);
  const lf = window.indexOf(0x0a);
  if (lf < 0) {
    if (buf.length >= PROXY_V1_BYTES_MAX) {
      throw new ProxyHeaderError(`v1 header without CRLF in ${PROXY_V1_BYTES_MAX} bytes`);
    }
    return "more";
  }
  if (lf === 0 || window[lf - 1] !== 0x0d) throw new ProxyHeaderError("v1 header ends without CR");
  const line = Buffer.from(window.subarray(0, lf - 1)).toString("latin1");
  const fields = line.split(" ");
  const length = lf + 1;
  if (fields[1] === "UNKNOWN") return { header: { version: 1, source: null, dest: null }, length };
  if (fields.length !== 6) {
    throw new ProxyHeaderError(`v1 header has ${fields.length} fields, not 6`);
  }
  const [, proto, src, dst, sport, dport] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const isFamily = proto === "TCP4" ? isIPv4 : proto === "TCP6" ? isIPv6 : null;
  if (isFamily === null) throw new ProxyHeaderError(`v1 protocol "${clip(proto)}" is unknown`);
  for (const a of [src, dst]) {
    if (!isFamily(a)) throw new ProxyHeaderError(`v1 address "${clip(a)}" is not ${proto}`);
  }
  return {
    header: {
      version: 1,
      source: { address: canonical(src), port: v1Port(sport) },
      dest: { address: canonical(dst), port: v1Port(dport) },
    },
    length,
  };
}

/** A v1 port: decimal 0..65535, no sign or leading zero. */
function v1Port(text: string): number {
  if (!/^(0|[1-9]\d{0,4})$/.test(text) || Number(text) > 65535) {
    throw new ProxyHeaderError(`v1 port "${clip(text)}" is not 0..65535`);
  }
  return Number(text);
}

/** An address as the rest of the proxy writes it (RFC 5952 for IPv6). */
function canonical(ip: string): string {
  const b = ipBytes(ip)!;
  return ipText(b, b.length === 4 ? 4 : 6);
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 39)}…` : s;
}

/** Address bytes of a v2 family (INET, INET6), UNIX: 216; UNSPEC: 0. */
const V2_ADDRESS_BYTES = [0, 12, 36, 216];

function parseV2(buf: Uint8Array): ParseResult {
  const n = Math.min(buf.length, PROXY_V2_SIGNATURE.length);
  for (let i = 0; i < n; i++) {
    if (buf[i] !== PROXY_V2_SIGNATURE[i]) throw new ProxyHeaderError("wrong v2 signature");
  }
  if (buf.length < 16) {
    if (buf.length > 12) checkV2Head(buf);
    return "more";
  }
  const family = checkV2Head(buf);
  const rest = (buf[14]! << 8) | buf[15]!;
  const length = 16 + rest;
  if (length > PROXY_V2_BYTES_MAX) {
    throw new ProxyHeaderError(`v2 header of ${length} bytes (at most ${PROXY_V2_BYTES_MAX})`);
  }
  const local = (buf[12]! & 0x0f) === 0;
  const need = local ? 0 : V2_ADDRESS_BYTES[family]!;
  if (rest < need) {
    throw new ProxyHeaderError(`v2 length ${rest} is short of the ${need} address bytes`);
  }
  if (buf.length < length) return "more";
  if (local || family === 0 || family === 3) {
    return { header: { version: 2, source: null, dest: null }, length };
  }
  const v4 = family === 1;
  const size = v4 ? 4 : 16;
  const view = buf.subarray(16);
  const ports = 2 * size;
  return {
    header: {
      version: 2,
      source: {
        address: ipText(view, v4 ? 4 : 6, 0),
        port: (view[ports]! << 8) | view[ports + 1]!,
      },
      dest: {
        address: ipText(view, v4 ? 4 : 6, size),
        port: (view[ports + 2]! << 8) | view[ports + 3]!,
      },
    },
    length,
  };
}

/** Checks version, command (byte 12) and family/transport (byte 13); returns the family. */
function checkV2Head(buf: Uint8Array): number {
  const vc = buf[12]!;
  if (vc >> 4 !== 2) throw new ProxyHeaderError(`v2 version ${vc >> 4} is unknown`);
  if ((vc & 0x0f) > 1) throw new ProxyHeaderError(`v2 command ${vc & 0x0f} is unknown`);
  if (buf.length < 14) return 0;
  const ft = buf[13]!;
  if (ft >> 4 > 3) throw new ProxyHeaderError(`v2 address family ${ft >> 4} is unknown`);
  if ((ft & 0x0f) > 2) throw new ProxyHeaderError(`v2 transport ${ft & 0x0f} is unknown`);
  return ft >> 4;
}

/**
 * The header telling an instance who connected (`source`) to what (`dest`). Addresses that are
 * no IP (an unknown peer) give `PROXY UNKNOWN` (v1) or an UNSPEC header (v2); an IPv4 and an
 * IPv6 end are both sent as IPv6 (the IPv4 one mapped), and an IPv4-mapped address alone as
 * IPv4.
 */
export function buildProxyHeader(version: 1 | 2, source: Endpoint, dest: Endpoint): Uint8Array {
  let s = ipBytes(source.address);
  let d = ipBytes(dest.address);
  if (s !== null && d !== null) {
    const s4 = unmapped(s);
    const d4 = unmapped(d);
    if (s4 !== null && d4 !== null) [s, d] = [s4, d4];
    else [s, d] = [mapped(s), mapped(d)];
  }
  if (version === 1) {
    if (s === null || d === null) return Buffer.from("PROXY UNKNOWN\r\n", "latin1");
    const fam = s.length === 4 ? 4 : 6;
    return Buffer.from(
      `PROXY TCP${fam} ${ipText(s, fam)} ${ipText(d, fam)} ${source.port} ${dest.port}\r\n`,
      "latin1",
    );
  }
  const size = s === null || d === null ? 0 : s.length;
  const rest = size === 0 ? 0 : 2 * size + 4;
  const out = new Uint8Array(16 + rest);
  out.set(PROXY_V2_SIGNATURE);
  out[12] = 0x21; // version 2, PROXY
  out[13] = size === 0 ? 0x00 : size === 4 ? 0x11 : 0x21; // UNSPEC, or INET/INET6 over STREAM
  out[14] = rest >> 8;
  out[15] = rest & 0xff;
  if (size > 0) {
    out.set(s!, 16);
    out.set(d!, 16 + size);
    const p = 16 + 2 * size;
    out[p] = source.port >> 8;
    out[p + 1] = source.port & 0xff;
    out[p + 2] = dest.port >> 8;
    out[p + 3] = dest.port & 0xff;
  }
  return out;
}

/** The 4 bytes of an IPv4 address given as 4, or as IPv4-mapped IPv6; else null. */
function unmapped(b: Uint8Array): Uint8Array | null {
  if (b.length === 4) return b;
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return null;
  return b[10] === 0xff && b[11] === 0xff ? b.slice(12) : null;
}

/** 16 bytes: IPv6 as is, IPv4 as `::ffff:a.b.c.d`. */
function mapped(b: Uint8Array): Uint8Array {
  if (b.length === 16) return b;
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(b, 12);
  return out;
}
