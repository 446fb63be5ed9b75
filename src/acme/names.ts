/**
 * Which names the cluster orders certificates for: the hosts the proxy routes (its route table,
 * src/proxy/routes.ts: each `berth.http.host` name and
 * `SERVICE.<edge-domain>`) of services with an instance saying `berth.tls=acme`, or of every
 * routed service with `--acme-all`. A host routed on several paths is ordered when any service
 * routing it asks. Never a name no service routes; never a wildcard (HTTP-01 and TLS-ALPN-01
 * cannot prove one); never an IP address or a name that is not a DNS name of at least two labels
 * a public CA could sign; with `--acme-domains`, only names in those domains.
 *
 * @module
 */
import { buildRouteTable, type RouteTable } from "../proxy/routes.ts";
import type { Instance, NodeInfo } from "../store/mod.ts";

export interface AcmeNamesOptions {
  /** `--edge-domain` (`acmeNames` only; a route table has its own): `SERVICE.<edgeDomain>`. */
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

/** What the names are read from: a route table kept up to date (the proxy's). */
export type NamesSource = Pick<RouteTable, "hosts" | "acmeHosts" | "hostsVersion">;

/** The names to order, sorted, from a route table. */
export function acmeNamesIn(table: NamesSource, opts: AcmeNamesOptions = {}): string[] {
  const hosts = opts.all === true ? table.hosts() : table.acmeHosts;
  const names: string[] = [];
  for (const h of hosts) if (isOrderableName(h) && inDomains(h, opts.domains)) names.push(h);
  return names.sort();
}

/** The names to order, sorted, from the store's instances and nodes (builds a route table). */
export function acmeNames(
  instances: readonly Instance[],
  nodes: readonly NodeInfo[],
  opts: AcmeNamesOptions = {},
): string[] {
  return acmeNamesIn(buildRouteTable(instances, nodes, { edgeDomain: opts.edgeDomain }), opts);
}

/**
 * `acmeNamesIn` the route table `table()` returns (the proxy's, which follows the change feed),
 * computed again only when that table's named hosts or ACME wishes changed: the manager asks
 * every pass, and instance changes that touch no host cost nothing here. `edgeDomain` is the
 * table's own.
 */
export function acmeNamesOf(
  table: () => NamesSource,
  opts: AcmeNamesOptions = {},
): () => string[] {
  let seen: NamesSource | null = null;
  let version = -1;
  let names: string[] = [];
  return () => {
    const t = table();
    if (t !== seen || t.hostsVersion !== version) {
      names = acmeNamesIn(t, opts);
      seen = t;
      version = t.hostsVersion;
    }
    return names;
  };
}
