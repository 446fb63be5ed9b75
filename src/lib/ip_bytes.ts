/**
 * IP literals as the bytes a DNS A/AAAA record or an X.509 iPAddress name carries. A leaf module.
 *
 * @module
 */
import { isIPv4, isIPv6 } from "node:net";

/** The 4 or 16 address bytes of an IP literal, or null when it is not one. */
export function ipBytes(ip: string): Uint8Array | null {
  if (isIPv4(ip)) return Uint8Array.from(ip.split(".").map(Number));
  if (!isIPv6(ip)) return null;
  let text = ip.replace(/%.*$/, "");
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const q = v4.slice(1).map(Number);
    const hex = (h: number, l: number) => ((h << 8) | l).toString(16);
    text = text.slice(0, -v4[0].length) + hex(q[0]!, q[1]!) + ":" + hex(q[2]!, q[3]!);
  }
  const out = new Uint8Array(16);
  const [head, rest] = text.split("::") as [string, string | undefined];
  const hs = head === "" ? [] : head.split(":").map((h) => parseInt(h, 16));
  const rs = rest === undefined || rest === "" ? [] : rest.split(":").map((h) => parseInt(h, 16));
  const groups = rest === undefined
    ? hs
    : [...hs, ...new Array(8 - hs.length - rs.length).fill(0), ...rs];
  if (groups.length !== 8) return null;
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/**
 * The text of 4 or 16 address bytes at `offset` in `bytes`: dotted IPv4, or IPv6 as RFC 5952
 * writes it (lower case, the longest run of two or more zero groups as `::`, the first of equal
 * runs), an IPv4-mapped IPv6 address as `::ffff:a.b.c.d`.
 */
export function ipText(bytes: Uint8Array, family: 4 | 6, offset = 0): string {
  const b = (i: number) => bytes[offset + i] ?? 0;
  if (family === 4) return `${b(0)}.${b(1)}.${b(2)}.${b(3)}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b(i) << 8) | b(i + 1));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${b(12)}.${b(13)}.${b(14)}.${b(15)}`;
  }
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (bestAt < 0) return hex(groups);
  return `${hex(groups.slice(0, bestAt))}::${hex(groups.slice(bestAt + bestLen))}`;
}
