/**
 * Test helpers for the health folder: a loopback HTTP server whose answers a test scripts, a TCP
 * server, and an instance spec builder (polling: test/wait.ts). Not exported from mod.ts.
 *
 * @module
 */
import http from "node:http";
import net from "node:net";
import type { CheckDefinition, InstanceSpec } from "../store/mod.ts";
import { apiInstanceSpec } from "../../test/fixtures.ts";

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

/** An API instance of `node` at 127.0.0.1:`port` with `check` and no result yet. */
export function instance(
  id: string,
  node: string,
  port: number,
  check: CheckDefinition | null,
): InstanceSpec {
  return apiInstanceSpec({ id, node, address: "127.0.0.1", port, tags: [], meta: {}, check });
}
