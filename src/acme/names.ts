/**
 * Which names the cluster orders certificates for: the hosts the proxy routes (the same rules as
 * src/proxy/routes.ts, by building its route table: each `berth.http.host` name and
 * `SERVICE.<edge-domain>`) of services with an instance saying `berth.tls=acme`, or of every
 * routed service with `--acme-all`. A host routed on several paths is ordered when any service
 * routing it asks. Never a name no service routes; never a wildcard (HTTP-01 and TLS-ALPN-01
 * cannot prove one); never an IP address or a name that is not a DNS name of at least two labels
 * a public CA could sign; with `--acme-domains`, only names in those domains.
 *
 * @module
 */
import { buildRouteTable } from "../proxy/routes.ts";
import type { Instance, NodeInfo } from "../store/mod.ts";

export interface AcmeNamesOptions {
  /** `--edge-domain`: each service also answers on `SERVICE.<edgeDomain>`. */
  edgeDomain?: string | null;
  /** `--acme-all`: every routed host, whether its service asks or not. */
  all?: boolean;
  /** `--acme-domains`: only these names and the names under them (empty or absent: any). */
  domains?: readonly string[];
}

/** Whether `name` is one of `domains` or under one (no domains: any name). */
function inDomains(name: string, domains: readonly string[] | undefined): boolean {
  if (domains === undefined || domains.length === 0) return true;
  return domains.some((d) => name === d || name.endsWith(`.${d}`));
}

/** Longest DNS name and label a certificate can carry. */
const NAME_CHARS_MAX = 253;
const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Whether `name` can be ordered: lower-case letters, digits and inner `-` in labels of 1–63,
 * at least two labels, at most 253 characters, the last label not all digits (no IP address),
 * no wildcard, no `_`.
 */
export function isOrderableName(name: string): boolean {
  if (name.length === 0 || name.length > NAME_CHARS_MAX) return false;
  const labels = name.split(".");
  if (labels.length < 2) return false;
  if (!labels.every((l) => LABEL_RE.test(l))) return false;
  return !/^[0-9]+$/.test(labels[labels.length - 1]!);
}

/** The names to order, sorted, from the store's instances and nodes. */
export function acmeNames(
  instances: readonly Instance[],
  nodes: readonly NodeInfo[],
  opts: AcmeNamesOptions = {},
): string[] {
  const table = buildRouteTable(instances, nodes, { edgeDomain: opts.edgeDomain ?? null });
  const names = new Set<string>();
  for (const r of table.httpRoutes()) {
    if (r.host === null || names.has(r.host)) continue;
    const asks = opts.all === true || table.services.get(r.service)?.acme === true;
    if (asks && isOrderableName(r.host) && inDomains(r.host, opts.domains)) names.add(r.host);
  }
  return [...names].sort();
}

/** What `acmeNamesOf` reads: the store's instances and nodes with their change indexes. */
export interface NamesSource {
  instances(): readonly Instance[];
  nodes(): readonly NodeInfo[];
  tableIndex(table: "instances" | "nodes"): number;
}

/**
 * `acmeNames` over a store, computed again only when its instances or nodes changed (the route
 * table it builds costs O(instances); the manager asks every pass).
 */
export function acmeNamesOf(store: NamesSource, opts: AcmeNamesOptions = {}): () => string[] {
  let seen = "";
  let names: string[] = [];
  return () => {
    const at = `${store.tableIndex("instances")}/${store.tableIndex("nodes")}`;
    if (at !== seen) {
      names = acmeNames(store.instances(), store.nodes(), opts);
      seen = at;
    }
    return names;
  };
}
