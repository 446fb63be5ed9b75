// Local types for the slice of npm dns-packet the dns tests use. @types/dns-packet pulls in
// @types/node, whose globals clash with Deno's node types (node:sqlite, timers) program-wide.
export interface Rec {
  name: string;
  type: string;
  class?: string;
  ttl?: number;
  // deno-lint-ignore no-explicit-any
  data?: any;
  udpPayloadSize?: number;
  extendedRcode?: number;
}
export interface DecodedPacket {
  id: number;
  flags: number;
  flag_aa: boolean;
  flag_tc: boolean;
  flag_rd: boolean;
  flag_ra: boolean;
  rcode: string;
  questions: { name: string; type: string; class: string }[];
  answers: Rec[];
  authorities: Rec[];
  additionals: Rec[];
}
export interface Packet {
  type: "query" | "response";
  id: number;
  flags: number;
  questions: { name: string; type: string; class: string }[];
  answers?: Rec[];
  additionals?: Rec[];
}
export function encode(p: Packet): Uint8Array;
export function decode(b: Uint8Array): DecodedPacket;
export const RECURSION_DESIRED: number;
