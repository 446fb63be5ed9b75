/**
 * What `/v1/berth/explain` (explain.ts) reads beyond the store: the proxy's and the Docker
 * watcher's views and a way to ask other members. Apart from explain.ts so that deps.ts can
 * name it without importing the route module.
 *
 * @module
 */
import type { ContainerExplain } from "../docker/mod.ts";
import type { PickContext, ServiceRoutesInfo, UrlExplain } from "../proxy/route_explain.ts";
import type { UrlTarget } from "../lib/request_target.ts";
import type { PeerGet } from "./explain_peers.ts";

/** What explain reads beyond the store; the agent wires them (absent: that part is off). */
export interface ExplainSources {
  /** The Docker watcher's view of a container on this member. */
  container?: (
    query: string,
  ) => { container: ContainerExplain; seenAgoMs: number } | { error: string };
  /** The route a URL matches in this member's route table, and the balancer's pick. */
  url?: (target: UrlTarget, ctx: PickContext) => UrlExplain;
  /** A service's routes in this member's route table; null when it has no member there. */
  serviceRoutes?: (service: string) => ServiceRoutesInfo | null;
  /** Asks another member's API (default: fetch to its node's `api` meta). */
  peer?: PeerGet;
}
