/**
 * Test helpers for the health folder: a one-node cluster, a loopback HTTP server whose answers a
 * test scripts, a TCP server, a UDP server, and an instance spec builder (polling: test/wait.ts).
 * Not exported from mod.ts.
 *
 * @module
 */
import dgram from "node:dgram";
import http from "node:http";
import net from "node:net";
import { LocalCluster } from "../cluster/testing.ts";
import type { Proposed } from "../cluster/types.ts";
import { type CheckDefinition, type Command, type InstanceSpec, Store } from "../store/mod.ts";
import { apiInstanceSpec } from "../../test/fixtures.ts";

/**
 * An in-memory store under a one-node LocalCluster with `node` (127.0.0.1) registered; `propose`
 * keeps each command in `proposed`, then proposes it.
 */
export async function oneNodeCluster(node: string) {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node, address: "127.0.0.1" });
  await cluster.propose({ type: "node.register", name: node, address: "127.0.0.1", meta: {} });
  const proposed: Command[] = [];
  const propose = (cmd: Command): Promise<Proposed> => {
    proposed.push(cmd);
    return cluster.propose(cmd);
  };
  return { store, cluster, proposed, propose };
}

export interface TestServer {
  port: number;
  /** Paths requested, in arrival order. */
  requests: string[];
  close(): Promise<void>;
}

/** A node:http server on 127.0.0.1:0; `answer` gives the status code, or "hang" to never reply. */
export async function httpServer(
  answer: (path: string, n: number) => number | "hang",
): Promise<TestServer> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? "");
    const code = answer(req.url ?? "", requests.length);
    if (code === "hang") return;
    res.writeHead(code, { "content-type": "text/plain" });
    res.end("x".repeat(100_000));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A TCP server on 127.0.0.1:0 that closes each connection it accepts. */
export async function tcpServer(): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * A UDP server on 127.0.0.1:0 that answers each datagram with `answer(text)` (null: stays
 * silent); `got` holds what arrived, as text.
 */
export async function udpServer(
  answer: (text: string) => string | null,
): Promise<{ port: number; got: string[]; close(): Promise<void> }> {
  const sock = dgram.createSocket("udp4");
  const got: string[] = [];
  sock.on("message", (m, r) => {
    got.push(m.toString());
    const a = answer(m.toString());
    if (a !== null) sock.send(a, r.port, r.address);
  });
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
  return {
    port: sock.address().port,
    got,
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}

/**
 * A loopback UDP port nobody listens on now: bound once to be sure, then closed. Taken below
 * the kernel's ephemeral range (32768 and up), where the port-0 sockets of tests running in
 * parallel land, so none of them is likely to take it meanwhile.
 */
export async function closedUdpPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const sock = dgram.createSocket("udp4");
    const bound = await new Promise<boolean>((ok) => {
      sock.once("error", () => ok(false));
      sock.bind(port, "127.0.0.1", () => ok(true));
    });
    await new Promise<void>((r) => sock.close(() => r()));
    if (bound) return port;
  }
}

/** An API instance of `node` at 127.0.0.1:`port` with `check` and no result yet. */
export function instance(
  id: string,
  node: string,
  port: number,
  check: CheckDefinition | null,
): InstanceSpec {
  return apiInstanceSpec({ id, node, address: "127.0.0.1", port, tags: [], meta: {}, check });
}
