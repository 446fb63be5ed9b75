/**
 * `deno task consul-endpoints`: which of Consul's HTTP endpoints berth answers. The list below is
 * Consul CE's `/v1` HTTP API: every route its agent serves, written as Consul's API docs write
 * them (method, path with `:params`) and grouped by the docs page that documents them (`acl/tokens`,
 * `agent/check`, …). Left out: `/v1/internal/*` (Consul's UI and its own tooling, undocumented)
 * and the Enterprise-only pages (namespaces, admin partitions, network areas and segments,
 * license, audit, utilization). Each endpoint is checked against the routes of berth's real API
 * app (built in process, as test/readme_test.ts does); test/consul_endpoints_test.ts keeps the
 * list, the app and README's summary in step.
 *
 * Usage: deno task consul-endpoints [--summary]
 *   (default) a markdown table of every endpoint, answered or not, with the counts
 *   --summary  the counts per docs page (README "HTTP API and CLI" holds this)
 *
 * @module
 */
import type { Hono } from "hono";
import { createApp } from "../src/api/mod.ts";
import { LocalCluster } from "../src/cluster/testing.ts";
import { errorText } from "../src/lib/error_text.ts";
import { parseFlags } from "../src/lib/flags.ts";
import { Store } from "../src/store/mod.ts";

export interface ConsulEndpoint {
  /** The Consul API docs page (under api-docs/) documenting it. */
  page: string;
  method: "GET" | "PUT" | "POST" | "DELETE";
  /** With `/v1`, parameters as `:name`. */
  path: string;
}

const LIST: [page: string, endpoints: string[]][] = [
  ["acl", [
    "PUT /v1/acl/bootstrap",
    "GET /v1/acl/replication",
    "POST /v1/acl/login",
    "POST /v1/acl/logout",
  ]],
  ["acl/tokens", [
    "PUT /v1/acl/token",
    "GET /v1/acl/token/:AccessorID",
    "GET /v1/acl/token/self",
    "PUT /v1/acl/token/:AccessorID",
    "PUT /v1/acl/token/:AccessorID/clone",
    "DELETE /v1/acl/token/:AccessorID",
    "GET /v1/acl/tokens",
  ]],
  ["acl/policies", [
    "PUT /v1/acl/policy",
    "GET /v1/acl/policy/:id",
    "GET /v1/acl/policy/name/:name",
    "PUT /v1/acl/policy/:id",
    "DELETE /v1/acl/policy/:id",
    "GET /v1/acl/policies",
  ]],
  ["acl/roles", [
    "PUT /v1/acl/role",
    "GET /v1/acl/role/:id",
    "GET /v1/acl/role/name/:name",
    "PUT /v1/acl/role/:id",
    "DELETE /v1/acl/role/:id",
    "GET /v1/acl/roles",
  ]],
  ["acl/auth-methods", [
    "PUT /v1/acl/auth-method",
    "GET /v1/acl/auth-method/:name",
    "PUT /v1/acl/auth-method/:name",
    "DELETE /v1/acl/auth-method/:name",
    "GET /v1/acl/auth-methods",
  ]],
  ["acl/binding-rules", [
    "PUT /v1/acl/binding-rule",
    "GET /v1/acl/binding-rule/:id",
    "PUT /v1/acl/binding-rule/:id",
    "DELETE /v1/acl/binding-rule/:id",
    "GET /v1/acl/binding-rules",
  ]],
  ["acl/templated-policies", [
    "GET /v1/acl/templated-policies",
    "GET /v1/acl/templated-policy/name/:name",
    "POST /v1/acl/templated-policy/preview/:name",
  ]],
  ["agent", [
    "GET /v1/agent/host",
    "GET /v1/agent/version",
    "GET /v1/agent/members",
    "GET /v1/agent/self",
    "PUT /v1/agent/reload",
    "PUT /v1/agent/maintenance",
    "GET /v1/agent/metrics",
    "GET /v1/agent/metrics/stream",
    "GET /v1/agent/monitor",
    "PUT /v1/agent/join/:address",
    "PUT /v1/agent/leave",
    "PUT /v1/agent/force-leave/:node",
    "PUT /v1/agent/token/:type",
  ]],
  ["agent/check", [
    "GET /v1/agent/checks",
    "PUT /v1/agent/check/register",
    "PUT /v1/agent/check/deregister/:check_id",
    "PUT /v1/agent/check/pass/:check_id",
    "PUT /v1/agent/check/warn/:check_id",
    "PUT /v1/agent/check/fail/:check_id",
    "PUT /v1/agent/check/update/:check_id",
  ]],
  ["agent/service", [
    "GET /v1/agent/services",
    "GET /v1/agent/service/:service_id",
    "GET /v1/agent/health/service/name/:service_name",
    "GET /v1/agent/health/service/id/:service_id",
    "PUT /v1/agent/service/register",
    "PUT /v1/agent/service/deregister/:service_id",
    "PUT /v1/agent/service/maintenance/:service_id",
  ]],
  ["agent/connect", [
    "POST /v1/agent/connect/authorize",
    "GET /v1/agent/connect/ca/roots",
    "GET /v1/agent/connect/ca/leaf/:service",
  ]],
  ["catalog", [
    "PUT /v1/catalog/register",
    "PUT /v1/catalog/deregister",
    "GET /v1/catalog/datacenters",
    "GET /v1/catalog/nodes",
    "GET /v1/catalog/services",
    "GET /v1/catalog/service/:service",
    "GET /v1/catalog/connect/:service",
    "GET /v1/catalog/node/:node",
    "GET /v1/catalog/node-services/:node",
    "GET /v1/catalog/gateway-services/:gateway",
  ]],
  ["config", [
    "PUT /v1/config",
    "GET /v1/config/:kind/:name",
    "GET /v1/config/:kind",
    "DELETE /v1/config/:kind/:name",
  ]],
  ["connect/ca", [
    "GET /v1/connect/ca/roots",
    "GET /v1/connect/ca/configuration",
    "PUT /v1/connect/ca/configuration",
  ]],
  ["connect/intentions", [
    "PUT /v1/connect/intentions/exact",
    "POST /v1/connect/intentions",
    "PUT /v1/connect/intentions/:uuid",
    "GET /v1/connect/intentions/exact",
    "GET /v1/connect/intentions/:uuid",
    "GET /v1/connect/intentions",
    "DELETE /v1/connect/intentions/exact",
    "DELETE /v1/connect/intentions/:uuid",
    "GET /v1/connect/intentions/check",
    "GET /v1/connect/intentions/match",
  ]],
  ["coordinate", [
    "GET /v1/coordinate/datacenters",
    "GET /v1/coordinate/nodes",
    "GET /v1/coordinate/node/:node",
    "PUT /v1/coordinate/update",
  ]],
  ["discovery-chain", [
    "GET /v1/discovery-chain/:service",
    "POST /v1/discovery-chain/:service",
  ]],
  ["event", ["PUT /v1/event/fire/:name", "GET /v1/event/list"]],
  ["exported-services", ["GET /v1/exported-services"]],
  ["health", [
    "GET /v1/health/node/:node",
    "GET /v1/health/checks/:service",
    "GET /v1/health/service/:service",
    "GET /v1/health/connect/:service",
    "GET /v1/health/ingress/:service",
    "GET /v1/health/state/:state",
  ]],
  ["kv", ["GET /v1/kv/:key", "PUT /v1/kv/:key", "DELETE /v1/kv/:key"]],
  ["operator/autopilot", [
    "GET /v1/operator/autopilot/configuration",
    "PUT /v1/operator/autopilot/configuration",
    "GET /v1/operator/autopilot/health",
    "GET /v1/operator/autopilot/state",
  ]],
  ["operator/keyring", [
    "GET /v1/operator/keyring",
    "POST /v1/operator/keyring",
    "PUT /v1/operator/keyring",
    "DELETE /v1/operator/keyring",
  ]],
  ["operator/raft", [
    "GET /v1/operator/raft/configuration",
    "POST /v1/operator/raft/transfer-leader",
    "DELETE /v1/operator/raft/peer",
  ]],
  ["operator/usage", ["GET /v1/operator/usage"]],
  ["peering", [
    "POST /v1/peering/token",
    "POST /v1/peering/establish",
    "GET /v1/peering/:name",
    "DELETE /v1/peering/:name",
    "GET /v1/peerings",
  ]],
  ["query", [
    "POST /v1/query",
    "GET /v1/query",
    "GET /v1/query/:uuid",
    "PUT /v1/query/:uuid",
    "DELETE /v1/query/:uuid",
    "GET /v1/query/:uuid/execute",
    "GET /v1/query/:uuid/explain",
  ]],
  ["session", [
    "PUT /v1/session/create",
    "PUT /v1/session/destroy/:uuid",
    "GET /v1/session/info/:uuid",
    "GET /v1/session/node/:node",
    "GET /v1/session/list",
    "PUT /v1/session/renew/:uuid",
  ]],
  ["snapshot", ["GET /v1/snapshot", "PUT /v1/snapshot"]],
  ["status", ["GET /v1/status/leader", "GET /v1/status/peers"]],
  ["txn", ["PUT /v1/txn"]],
];

/** Consul CE's `/v1` endpoints, in the order of its API docs' pages. */
export const CONSUL_ENDPOINTS: readonly ConsulEndpoint[] = LIST.flatMap(([page, list]) =>
  list.map((e) => {
    const [method, path] = e.split(" ") as [ConsulEndpoint["method"], string];
    return { page, method, path };
  })
);

export interface AppRoute {
  method: string;
  path: string;
}

/** The app's Consul routes: under /v1/, middleware and berth's own /v1/berth/ left out. */
export function consulRoutesOf(app: Hono): AppRoute[] {
  return app.routes
    .filter((r) => r.method !== "ALL" && r.path.startsWith("/v1/"))
    .filter((r) => !r.path.startsWith("/v1/berth/"))
    .map((r) => ({ method: r.method, path: r.path }));
}

/**
 * Request paths for an endpoint: each `:param` as `x`. A KV key may also be empty
 * (`/v1/kv/?recurse` reads every key), which berth serves as `/v1/kv`.
 */
export function samplePaths(e: ConsulEndpoint): string[] {
  const one = e.path.replace(/:[^/]+/g, "x");
  return e.path === "/v1/kv/:key" ? [one, "/v1/kv"] : [one];
}

/** Whether a Hono route (`:param` segments, a trailing `/*`) serves request path `path`. */
export function routeMatches(routePath: string, path: string): boolean {
  const re = new RegExp(
    "^" + routePath.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\/\*$/, "(/.*)?")
      .replace(/:[^/]+/g, "[^/]+") +
      "$",
  );
  return re.test(path);
}

/** The app routes that serve endpoint `e` (none: berth does not answer it). */
export function routesFor(routes: AppRoute[], e: ConsulEndpoint): AppRoute[] {
  return routes.filter((r) =>
    r.method === e.method && samplePaths(e).some((p) => routeMatches(r.path, p))
  );
}

/** berth's API app over an in-memory store (no agent, nothing listening). */
export function buildApp(): { app: Hono; close(): void } {
  const store = Store.open(":memory:");
  const abort = new AbortController();
  const app = createApp({
    store,
    cluster: new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" }),
    node: "n1",
    advertise: "127.0.0.1",
    version: "0.0.0-endpoints",
    aclDefault: "allow",
    signal: abort.signal,
  });
  return {
    app,
    close() {
      abort.abort();
      store.close();
    },
  };
}

/** Each listed endpoint with whether the app answers it. */
export function coverage(app: Hono): { endpoint: ConsulEndpoint; answered: boolean }[] {
  const routes = consulRoutesOf(app);
  return CONSUL_ENDPOINTS.map((endpoint) => ({
    endpoint,
    answered: routesFor(routes, endpoint).length > 0,
  }));
}

/** A markdown table with its columns padded, as `deno fmt` leaves one (README holds one). */
export function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

function totals(rows: { answered: boolean }[]): string {
  const yes = rows.filter((r) => r.answered).length;
  return `berth answers ${yes} of Consul CE's ${rows.length} /v1 endpoints ` +
    `(${rows.length - yes} not answered)`;
}

/** Every endpoint, answered or not, as a markdown table, then the counts. */
export function renderTable(app: Hono): string {
  const rows = coverage(app);
  const table = markdownTable(
    ["docs page", "method", "path", "berth"],
    rows.map(({ endpoint: e, answered }) => [
      e.page,
      e.method,
      `\`${e.path}\``,
      answered ? "answered" : "not answered",
    ]),
  );
  return `${table}\n\n${totals(rows)}.`;
}

/**
 * Counts per docs page as a markdown table; the pages berth answers none of share the last row
 * and are named below it (`acl/*` when that holds for every page under `acl/`).
 */
export function renderSummary(app: Hono): string {
  const rows = coverage(app);
  const pages = [...new Set(rows.map((r) => r.endpoint.page))];
  const answeredOn = (page: string) => rows.some((r) => r.endpoint.page === page && r.answered);
  const lines: string[][] = [];
  const none: string[] = [];
  let noneCount = 0;
  for (const page of pages) {
    const of = rows.filter((r) => r.endpoint.page === page);
    if (answeredOn(page)) {
      lines.push([page, `${of.length}`, `${of.filter((r) => r.answered).length}`]);
      continue;
    }
    noneCount += of.length;
    const top = page.split("/")[0]!;
    const family = pages.filter((p) => p === top || p.startsWith(`${top}/`));
    const name = family.length > 1 && !family.some(answeredOn) ? `${top}/*` : page;
    if (!none.includes(name)) none.push(name);
  }
  lines.push(["the others (below)", `${noneCount}`, "0"]);
  const table = markdownTable(["Consul API docs page", "endpoints", "berth answers"], lines);
  return `${table}\n\n${totals(rows)}. It answers nothing on the pages ` +
    `${none.map((p) => `\`${p}\``).join(", ")}.`;
}

if (import.meta.main) {
  let summary: boolean;
  try {
    const flags = parseFlags(Deno.args, [{ name: "summary", kind: "bool" }], {
      positionals: false,
    });
    const v = flags.values.get("summary");
    if (v !== undefined && v !== "true" && v !== "false") {
      throw new Error(`--summary ${JSON.stringify(v)}: expected no value, true or false`);
    }
    summary = v === "true";
  } catch (e) {
    console.error(`consul-endpoints: ${errorText(e)} (usage: consul-endpoints [--summary])`);
    Deno.exit(2);
  }
  const { app, close } = buildApp();
  console.log(summary ? renderSummary(app) : renderTable(app));
  close();
}
