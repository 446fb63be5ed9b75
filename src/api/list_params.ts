/**
 * The parameters Consul's list endpoints share: `?filter=` (filter.ts, checked against a sample
 * row of the endpoint's shape), `?node-meta=key:value` (repeatable; every pair must match the
 * node's meta) and `?near=` (`_agent` or a node name: that node's rows first; berth keeps no
 * network coordinates, so the rest keep their order).
 *
 * @module
 */
import type { Context } from "hono";
import type { CheckView, Instance, NodeInfo } from "../store/mod.ts";
import {
  agentService,
  catalogNode,
  catalogServiceEntry,
  consulCheck,
  healthEntry,
  type NodeView,
} from "./consul_shapes.ts";
import { type Filter, FilterError, parseFilter } from "./filter.ts";
import { badRequest } from "./http_error.ts";

export interface ListParams {
  filter: Filter | null;
  /** `[key, value]` pairs the node's meta must all have. */
  nodeMeta: [string, string][];
  /** The node whose rows come first; null: no `?near`. */
  near: string | null;
}

/** Reads `?filter`, `?node-meta` and `?near`; 400 with one line when one is bad. */
export function listParams(c: Context, sample: unknown, self: string): ListParams {
  const src = c.req.query("filter");
  let filter: Filter | null = null;
  if (src !== undefined && src.trim() !== "") {
    try {
      filter = parseFilter(src, sample);
    } catch (e) {
      if (e instanceof FilterError) {
        throw badRequest(`Failed to create boolean expression evaluator: ${e.message}`);
      }
      throw e;
    }
  }
  const nodeMeta = (c.req.queries("node-meta") ?? []).map((p): [string, string] => {
    const at = p.indexOf(":");
    if (at <= 0) throw badRequest(`bad ?node-meta=${p.slice(0, 80)}: expected key:value`);
    return [p.slice(0, at), p.slice(at + 1)];
  });
  const near = c.req.query("near");
  return {
    filter,
    nodeMeta,
    near: near === undefined || near === "" ? null : near === "_agent" ? self : near,
  };
}

/** Whether a node's meta has every `?node-meta` pair. */
export function nodeMetaMatches(
  meta: Record<string, string> | undefined,
  pairs: readonly [string, string][],
): boolean {
  return pairs.every(([k, v]) => meta?.[k] === v);
}

/**
 * Applies the parameters to rows in Consul's shape: node-meta (by `node(row)`), near (the near
 * node's rows first, the others in their order), then the filter on the row.
 */
export function applyListParams<T>(
  rows: readonly { row: T; node: Pick<NodeInfo, "name" | "meta"> }[],
  p: ListParams,
): T[] {
  let out = rows.filter((r) => nodeMetaMatches(r.node.meta, p.nodeMeta));
  if (p.near !== null) {
    out = [
      ...out.filter((r) => r.node.name === p.near),
      ...out.filter((r) => r.node.name !== p.near),
    ];
  }
  const rowsOut = out.map((r) => r.row);
  return p.filter === null ? rowsOut : rowsOut.filter((r) => p.filter!.test(r));
}

// ---- one sample row per shape, every field present, maps empty (filter.ts) ----

const SAMPLE_NODE: NodeView = {
  name: "n",
  address: "a",
  status: "alive",
  meta: {},
  createIndex: 0,
  modifyIndex: 0,
};

const SAMPLE_INSTANCE: Instance = {
  id: "i",
  service: "s",
  node: "n",
  address: "a",
  port: 0,
  tags: [],
  meta: {},
  weight: 1,
  containerId: null,
  httpHosts: [],
  httpPath: null,
  tcpPort: null,
  check: null,
  docker: null,
  checkResult: null,
  createIndex: 0,
  modifyIndex: 0,
};

const SAMPLE_CHECK: CheckView = {
  node: "n",
  id: "c",
  name: "c",
  status: "passing",
  output: "",
  notes: "",
  serviceId: "",
  serviceName: "",
  serviceTags: [],
  type: "",
  registered: null,
  createIndex: 0,
  modifyIndex: 0,
};

export const SAMPLES = {
  healthEntry: healthEntry(SAMPLE_INSTANCE, SAMPLE_NODE, "dc"),
  catalogService: catalogServiceEntry(SAMPLE_INSTANCE, SAMPLE_NODE, "dc"),
  node: catalogNode(SAMPLE_NODE, "dc"),
  check: consulCheck(SAMPLE_CHECK),
  agentService: agentService(SAMPLE_INSTANCE, "dc"),
};
