/**
 * Test helpers for src/dns: instance and node fixtures, a store filled through apply(), and a
 * small UDP/TCP client built on dns-packet. Not imported outside the folder's tests.
 *
 * @module
 */
// @ts-types="../../test/dns_packet.d.ts"
import * as packet from "dns-packet";
import type { DecodedPacket, Packet } from "../../test/dns_packet.d.ts";
import { Buffer } from "node:buffer";
import { createSocket, type RemoteInfo } from "node:dgram";
import { createConnection } from "node:net";
import type { Instance, InstanceSpec, NodeInfo } from "../store/mod.ts";
import { Store } from "../store/mod.ts";
import type { HostPort } from "../lib/host_port.ts";
import { apiInstanceSpec } from "../../test/fixtures.ts";
import { seededRandom } from "../../raft/sim/prng.ts";
import { type DnsOptions, DnsServer } from "./server.ts";

export type { DecodedPacket, Rec } from "../../test/dns_packet.d.ts";

/** Client-side wait before a test query gives up (a failure, not a timing assertion). */
export const CLIENT_TIMEOUT_MS = 3000;

export function instance(over: Partial<Instance> & { id: string; service: string }): Instance {
  return {
    ...apiInstanceSpec({ port: 80, tags: [], meta: {} }),
    createIndex: 1,
    modifyIndex: 1,
    ...over,
  };
}

export function node(over: Partial<NodeInfo> & { name: string }): NodeInfo {
  return {
    address: "192.168.1.1",
    status: "alive",
    meta: {},
    createIndex: 1,
    modifyIndex: 1,
    ...over,
  };
}

/** An in-memory store with nodes and instances applied through the log. */
export function filledStore(
  nodes: { name: string; address: string; meta?: Record<string, string> }[],
  instances: (Partial<InstanceSpec> & { id: string; service: string })[],
): { store: Store; apply: (command: unknown) => void } {
  const store = Store.open(":memory:");
  let index = 0;
  const apply = (command: unknown) => {
    const r = store.apply(++index, command);
    if (!r.ok) throw new Error(`apply failed: ${r.error}`);
  };
  for (const n of nodes) {
    apply({ type: "node.register", name: n.name, address: n.address, meta: n.meta ?? {} });
  }
  for (const i of instances) {
    apply({
      type: "register",
      instance: { node: "n1", address: "10.0.0.1", port: 80, ...i },
    });
  }
  return { store, apply };
}

export function query(
  name: string,
  type: string,
  opts: { id?: number; udpPayloadSize?: number; rd?: boolean } = {},
): Uint8Array {
  const p: Packet = {
    type: "query",
    id: opts.id ?? 4242,
    flags: opts.rd === false ? 0 : packet.RECURSION_DESIRED,
    questions: [{ name, type, class: "IN" }],
  };
  if (opts.udpPayloadSize !== undefined) {
    p.additionals = [{ type: "OPT", name: ".", udpPayloadSize: opts.udpPayloadSize }];
  }
  return new Uint8Array(packet.encode(p));
}

export function decode(bytes: Uint8Array): DecodedPacket {
  return packet.decode(Buffer.from(bytes));
}

/** Sends one datagram and waits for one reply; rejects after CLIENT_TIMEOUT_MS. */
export function udpExchange(to: HostPort, message: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    const timer = setTimeout(() => {
      s.close();
      reject(new Error("no UDP answer"));
    }, CLIENT_TIMEOUT_MS);
    s.on("message", (msg) => {
      clearTimeout(timer);
      s.close();
      resolve(new Uint8Array(msg));
    });
    s.send(message, to.port, to.host);
  });
}

/** Sends one datagram expecting no reply. */
export function udpSend(to: HostPort, message: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    const s = createSocket("udp4");
    s.send(message, to.port, to.host, () => {
      s.close();
      resolve();
    });
  });
}

/** Opens a TCP connection, writes `raw`, and collects `count` framed replies. */
export function tcpExchange(to: HostPort, raw: Uint8Array, count: number): Promise<Uint8Array[]> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: to.host, port: to.port });
    const out: Uint8Array[] = [];
    let buf = new Uint8Array(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`only ${out.length} of ${count} TCP answers`));
    }, CLIENT_TIMEOUT_MS);
    s.on("data", (chunk: Uint8Array) => {
      const next = new Uint8Array(buf.length + chunk.length);
      next.set(buf);
      next.set(chunk, buf.length);
      buf = next;
      while (buf.length >= 2 && buf.length >= 2 + ((buf[0]! << 8) | buf[1]!)) {
        const len = (buf[0]! << 8) | buf[1]!;
        out.push(buf.slice(2, 2 + len));
        buf = buf.slice(2 + len);
      }
      if (out.length >= count) {
        clearTimeout(timer);
        s.destroy();
        resolve(out);
      }
    });
    s.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on("close", () => {
      clearTimeout(timer);
      if (out.length < count) reject(new Error(`connection closed after ${out.length} answers`));
    });
    s.write(raw);
  });
}

/** Frames DNS messages for TCP (2-byte length prefix). */
export function frame(...messages: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(messages.reduce((n, m) => n + 2 + m.length, 0));
  let off = 0;
  for (const m of messages) {
    out[off] = m.length >> 8;
    out[off + 1] = m.length & 0xff;
    out.set(m, off + 2);
    off += 2 + m.length;
  }
  return out;
}

const LOOPBACK = { host: "127.0.0.1", port: 0 };

/** A DnsServer on a loopback port (not started) for `store`, seeded, TTL 0, no recursors. */
export function testServer(store: Store, over: Partial<DnsOptions> = {}): DnsServer {
  return new DnsServer({
    store,
    listen: LOOPBACK,
    domain: "berth.",
    edgeDomain: "edge.example.",
    ttl: 0,
    recursors: [],
    random: seededRandom(1),
    ...over,
  });
}

/** `n` instances of service "big" with distinct addresses and ports. */
export function manyInstances(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    id: `big${i}`,
    service: "big",
    address: `10.1.${i >> 8}.${i & 0xff}`,
    port: 1000 + i,
  }));
}

/** A recursor that holds every query until `release()`, then answers it (empty NOERROR). */
export async function heldRecursor() {
  const socket = createSocket("udp4");
  const held: [Uint8Array, RemoteInfo][] = [];
  const arrived = Promise.withResolvers<void>();
  socket.on("message", (msg, rinfo) => {
    held.push([new Uint8Array(msg), rinfo]);
    arrived.resolve();
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    address: { host: "127.0.0.1", port: socket.address().port } as HostPort,
    arrived: arrived.promise,
    release: () => {
      for (const [msg, rinfo] of held.splice(0)) {
        msg[2] = msg[2]! | 0x80; // QR: a response to the same id and question
        socket.send(msg, rinfo.port, rinfo.address);
      }
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
