/**
 * The explain part of the composition root (agent.ts): `/v1/berth/explain` reads the proxy's
 * route table (the main thread's copy with proxy workers) and the Docker watcher's view, and
 * other members reach this one at the API address it advertises in its node record.
 *
 * @module
 */
import type { Config } from "./config.ts";
import type { ExplainSources } from "./api/explain.ts";
import { API_META_KEY } from "./api/explain_peers.ts";
import type { DockerWatcher } from "./docker/mod.ts";
import { explainServiceRoutes, explainUrl } from "./proxy/route_explain.ts";
import type { ProxyFront } from "./agent_proxy.ts";
import { formatHostPort } from "./lib/host_port.ts";

/**
 * Explain's sources over the parts as they are when asked (either may start later or be off).
 * With `proxyWorkers` ≥ 2 the table read is the main thread's copy: the same routes, but each
 * worker rotates its own balancers, which the pick's note says.
 */
export function explainSources(
  proxy: () => ProxyFront | null,
  watcher: () => DockerWatcher | null,
  proxyWorkers: number,
): ExplainSources {
  return {
    container: (q) =>
      watcher()?.explain(q) ?? { error: "the Docker watcher is off on this member" },
    url: (t, ctx) => {
      const p = proxy();
      if (p === null) {
        return {
          ...t,
          matched: null,
          reasons: ["the proxy is off on this member"],
          conflicts: [],
          route: null,
          pick: null,
          pickNote: "the proxy is off on this member",
        };
      }
      const e = explainUrl(p.table, t, ctx);
      const rotates = e.route !== null && (ctx.key === undefined ||
        (e.route.policy !== "hash" && e.route.policy !== "sticky_cookie"));
      if (proxyWorkers < 2 || e.pick === null || !rotates) return e;
      return {
        ...e,
        pickNote: `${e.pickNote} (the main thread's copy: each of the ${proxyWorkers} ` +
          `proxy workers rotates on its own)`,
      };
    },
    serviceRoutes: (s) => {
      const p = proxy();
      return p === null ? null : explainServiceRoutes(p.table, s);
    },
  };
}

/** This member's node meta entry naming its API base URL (`api`: `http://10.0.0.5:8500`). */
export function apiMeta(
  config: Pick<Config, "http" | "httpTls" | "advertise">,
): Record<string, string> {
  const { host, port } = config.http;
  const wildcard = host === "0.0.0.0" || host === "::" || host === "";
  const scheme = config.httpTls.mode === "off" ? "http" : "https";
  return {
    [API_META_KEY]: `${scheme}://${
      formatHostPort({ host: wildcard ? config.advertise : host, port })
    }`,
  };
}
