/**
 * Test helpers of the proxy workers: two workers over a test store on a free loopback port.
 *
 * @module
 */
import { ProxyWorkers, type ProxyWorkersOptions } from "./proxy_workers.ts";
import type { WorkerProxyConfig } from "./protocol.ts";

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
