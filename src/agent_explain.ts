/**
 * The explain part of the composition root (agent.ts): `/v1/berth/explain` reads the proxy's
 * route table (the main thread's copy with proxy workers) and the Docker watcher's view, and
 * asks other members over the cluster transport (RaftCluster.ask, mutual TLS to the cluster
 * address of their Raft record), which answer from their own views (answerPeerQuery).
 *
 * @module
 */
import type { ExplainSources } from "./api/explain.ts";
import { answerPeerQuery, PEER_TIMEOUT_MS } from "./api/explain_peers.ts";
import type { RoutesView } from "./api/deps.ts";
import type { RaftCluster } from "./cluster/mod.ts";
import type { DockerWatcher } from "./docker/mod.ts";
import { explainServiceRoutes, explainUrl, proxyOffUrl } from "./proxy/route_explain.ts";
import type { ProxyFront } from "./agent_proxy.ts";

/**
 * Explain's sources over the parts as they are when asked (either may start later or be off).
 * With `proxyWorkers` ≥ 2 the table read is the main thread's copy: the same routes, but each
 * worker rotates its own balancers, which the pick's note says.
 */
export function explainSources(
  proxy: () => ProxyFront | null,
  watcher: () => DockerWatcher | null,
  proxyWorkers: number,
  cluster: Pick<RaftCluster, "ask">,
): ExplainSources {
  return {
    peer: (member, q) => cluster.ask(member, q, PEER_TIMEOUT_MS),
    container: (q) =>
      watcher()?.explainAny(q) ?? { error: "the Docker watcher is off on this member" },
    url: (t, ctx) => {
      const p = proxy();
      if (p === null) return proxyOffUrl(t);
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

/** Other members' explain questions answered from this member's proxy and Docker watcher. */
export function answerExplainQueries(
  cluster: Pick<RaftCluster, "answerQueries">,
  sources: ExplainSources,
  routes: () => RoutesView | null | Promise<RoutesView | null>,
): void {
  cluster.answerQueries((q) =>
    answerPeerQuery(q, {
      routes,
      ...(sources.container === undefined ? {} : { container: sources.container }),
    })
  );
}
