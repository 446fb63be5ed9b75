/**
 * DNS over real sockets for end-to-end tests: one query over UDP or TCP (dns-packet), and the A
 * and SRV lookups the tests use. test/harness.ts re-exports these.
 *
 * @module
 */
// @ts-types="./dns_packet.d.ts"
import * as dnsPacket from "dns-packet";
import type { Rec } from "./dns_packet.d.ts";
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { Buffer } from "node:buffer";

export interface DnsAnswer {
  rcode: string;
  flags: number;
  answers: Rec[];
  additionals: Rec[];
  authorities: Rec[];
}

let nextId = 1;

/** One DNS query over UDP (default) or TCP to 127.0.0.1:port. */
export function dnsQuery(
  port: number,
  name: string,
  type = "A",
  opts: { tcp?: boolean; timeoutMs?: number; host?: string } = {},
): Promise<DnsAnswer> {
  const id = (nextId++ % 65535) + 1;
  const q = dnsPacket.encode({
    type: "query",
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: "IN" }],
  });
  const host = opts.host ?? "127.0.0.1";
  const timeoutMs = opts.timeoutMs ?? 2000;
  const decode = (buf: Buffer): DnsAnswer => {
    const r = dnsPacket.decode(buf);
    return {
      rcode: r.rcode ?? "NOERROR",
      flags: r.flags ?? 0,
      answers: r.answers ?? [],
      additionals: r.additionals ?? [],
      authorities: r.authorities ?? [],
    };
  };
  return new Promise((resolve, reject) => {
    if (opts.tcp) {
      const sock = connect(port, host);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`DNS TCP timeout for ${name}`));
      }, timeoutMs);
      let buf = Buffer.alloc(0);
      sock.on("connect", () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(q.length);
        sock.write(Buffer.concat([len, q]));
      });
      sock.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          clearTimeout(timer);
          sock.destroy();
          resolve(decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
        }
      });
      sock.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      return;
    }
    const sock = createSocket("udp4");
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`DNS UDP timeout for ${name}`));
    }, timeoutMs);
    sock.on("message", (msg: Buffer) => {
      clearTimeout(timer);
      sock.close();
      resolve(decode(msg));
    });
    sock.send(q, port, host);
  });
}

/** The A records' addresses of a name (empty on NXDOMAIN). */
export async function lookupA(port: number, name: string, host?: string): Promise<string[]> {
  const r = await dnsQuery(port, name, "A", { host });
  return r.answers.filter((a) => a.type === "A").map((a) => String(a.data)).sort();
}

/** SRV answers as `address:port` via the additional section. */
export async function lookupSrv(
  port: number,
  name: string,
  host?: string,
): Promise<{ port: number; target: string }[]> {
  const r = await dnsQuery(port, name, "SRV", { host });
  return r.answers.filter((a) => a.type === "SRV").map((a) => {
    const d = a.data as { port: number; target: string };
    return { port: d.port, target: d.target };
  });
}
