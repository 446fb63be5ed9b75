/**
 * Test helpers of the proxy workers: two workers over a test store on a free loopback port.
 *
 * @module
 */
import assert from "node:assert/strict";
import http from "node:http";
import { ProxyWorkers, type ProxyWorkersOptions } from "./proxy_workers.ts";
import type { WorkerProxyConfig } from "./protocol.ts";
import type { TestStore } from "../_testing.ts";

/**
 * Two proxy workers over `store` listening for plain HTTP on a free loopback port (no HTTPS, no
 * h2, no edge domain), restarted after 50 ms; `config` adds to their config.
 */
export function twoWorkers(
  store: ProxyWorkersOptions["store"],
  opts: Partial<Pick<ProxyWorkersOptions, "log" | "metrics">> & {
    config?: Partial<WorkerProxyConfig>;
  } = {},
): ProxyWorkers {
  return new ProxyWorkers({
    metrics: opts.metrics,
    count: 2,
    store,
    config: {
      listen: { host: "127.0.0.1", port: 0 },
      https: null,
      h2: false,
      edgeDomain: null,
      reserved: [],
      ...opts.config,
    },
    certs: () => [],
    log: opts.log ?? (() => {}),
    restartMs: 50,
  });
}

/** Two proxy workers over `ts` on one free loopback port; closes them and the store after. */
export async function withWorkers(
  ts: TestStore,
  fn: (port: number, w: ProxyWorkers, logs: string[]) => Promise<void>,
): Promise<void> {
  const logs: string[] = [];
  const w = twoWorkers(ts.store, { log: (l) => logs.push(l) });
  try {
    await w.start();
    assert.equal(w.running, 2);
    await fn(w.address!.port, w, logs);
  } finally {
    await w.close();
    ts.store.close();
  }
}

/** A GET for web.test on its own connection: the status and body, or how the connection ended. */
export function get(port: number, path: string): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({
      host: "127.0.0.1",
      port,
      path,
      agent: false,
      headers: { host: "web.test" },
    });
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => body += d);
      res.on("end", () => resolve(`${res.statusCode} ${body}`));
      res.on("error", (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    });
    req.on("error", (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
  });
}
