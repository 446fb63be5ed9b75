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

/** What explain reads beyond the store; the agent wires them (absent: that part is off). */
export interface ExplainSources {
  /** The Docker watcher's view of a container on this member. */
  container?: (query: string) => ContainerAnswer | Promise<ContainerAnswer>;
  /** The route a URL matches in this member's route table, and the balancer's pick. */
  url?: (target: UrlTarget, ctx: PickContext) => UrlExplain;
  /** A service's routes in this member's route table; null when it has no member there. */
  serviceRoutes?: (service: string) => ServiceRoutesInfo | null;
  /**
   * Asks another member's agent over the cluster transport (RaftCluster.ask; absent: other
   * members are not asked).
   */
  peer?: PeerAsk;
}

/** A question to another member's agent (plain data; it crosses the cluster transport). */
export type PeerQuery =
  /** Its proxy's ejections among `instances`: answered `{ proxy, ejected }`. */
  | { q: "ejections"; instances: string[] }
  /** The container `query` (name or id prefix) as its Docker watcher sees it. */
  | { q: "container"; query: string };

/** What a member answers for a container: the watcher's view, or why it has none. */
export type ContainerAnswer = { container: ContainerExplain; seenAgoMs: number } | {
  error: string;
};

/** Asks member `member` a question; resolves with its answer, rejects with one line. */
export type PeerAsk = (member: string, query: PeerQuery) => Promise<unknown>;
