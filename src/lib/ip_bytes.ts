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
