/**
 * Which right every route of the API needs: one row per route of the app (method + Hono
 * pattern), checked by the ACL middleware (acl_enforce.ts) before the handler runs. The rights
 * follow Consul's: status endpoints and the dashboard's files are open; a single KV key needs
 * `key:read`/`key:write` on it; lists answer only what the token may read (`filtered`: the
 * handler drops the rest and sets `X-Consul-Results-Filtered-By-ACLs`); writes whose target is in
 * the body (catalog and agent registrations, session create, transactions) are checked by their
 * handler (`body`). acl_routes_test.ts fails on a route of the app without a row, and on a row
 * that matches no route.
 *
 * Segments: `none` for operator and acl; `agent` is this agent's node name; `key` the KV key of
 * the path (`key-tree`: every key under it, by the token's rules: Consul's KeyWritePrefix). `session`, `service-id` and `check-id` name
 * the object the path's `:id` names (the session's node, the instance's service, the check's
 * service or, for a node-level check, node:write on the node): the handler checks them once it
 * has looked the id up, with the same decoding it serves; an id that names nothing answers 404
 * as without ACLs.
 *
 * @module
 */
import { kvDeletesTree, kvReadShape } from "./kv_key.ts";

/** What a right is about (the same names as the ACL rules', `kv` for Consul's `key`). */
export type Resource =
  | "kv"
  | "service"
  | "node"
  | "session"
  | "agent"
  | "operator"
  | "acl"
  | "none";
export type Access = "read" | "write";

/** How the name a right is checked on is found. */
export type Segment =
  | "none"
  | "agent"
  | "key"
  | "key-tree"
  | "session"
  | "service-id"
  | "check-id";

export type Need =
  /** No token needed, an unknown one included (Consul's status endpoints, the dashboard files). */
  | { kind: "open"; why: string }
  /**
   * The token needs `access` on the resource `segment` names; 403 otherwise. `openUnjoined`: no
   * right needed while this agent belongs to no cluster (its store has no members, so no token
   * to check against; the join itself needs the target cluster's join secret).
   */
  | {
    kind: "right";
    resource: Resource;
    access: Access;
    segment: Segment;
    openUnjoined?: boolean;
  }
  /** A list: answers only what the token may read (the handler filters). */
  | { kind: "filtered"; rights: string }
  /** The target is in the body: the handler checks these rights after reading it. */
  | { kind: "body"; rights: string };

export interface RouteRule {
  method: "GET" | "PUT" | "POST" | "DELETE";
  /** The pattern exactly as the route module registers it. */
  path: string;
  /** The need; a function for routes where a query parameter turns one key into a list. */
  need: Need | ((query: (name: string) => string | undefined) => Need);
}

const open = (why: string): Need => ({ kind: "open", why });
const right = (resource: Resource, access: Access, segment: Segment = "none"): Need => ({
  kind: "right",
  resource,
  access,
  segment,
});
const filtered = (rights: string): Need => ({ kind: "filtered", rights });
const body = (rights: string): Need => ({ kind: "body", rights });

const SERVICE_LIST = "service:read on the service and node:read on the node of each instance";
const CHECK_WRITE = right("service", "write", "check-id"); // node:write for node-level checks

/**
 * `?recurse` and `?keys` list a prefix: filtered; otherwise the one key needs key:read. The
 * handler decides the shape with the same function (kv.ts), so a list is always filtered.
 */
const kvRead = (q: (name: string) => string | undefined): Need =>
  kvReadShape(q) === "one" ? right("kv", "read", "key") : filtered("key:read on each key");

/** `?recurse` deletes a tree: key:write on every key the prefix may hold (Consul's KeyWritePrefix). */
const kvDelete = (q: (name: string) => string | undefined): Need =>
  kvDeletesTree(q) ? right("kv", "write", "key-tree") : right("kv", "write", "key");

export const ROUTE_RULES: readonly RouteRule[] = [
  // catalog
  { method: "GET", path: "/v1/catalog/services", need: filtered("service:read on each service") },
  { method: "GET", path: "/v1/catalog/service/:name", need: filtered(SERVICE_LIST) },
  { method: "GET", path: "/v1/catalog/datacenters", need: open("Consul needs no token here") },
  { method: "GET", path: "/v1/catalog/nodes", need: filtered("node:read on each node") },
  {
    method: "GET",
    path: "/v1/catalog/node/:node",
    need: filtered("node:read on the node, service:read on each of its services"),
  },
  {
    method: "PUT",
    path: "/v1/catalog/register",
    need: body("node:write on Node (unless SkipNodeUpdate), service:write on Service.Service"),
  },
  {
    method: "PUT",
    path: "/v1/catalog/deregister",
    need: body("service:write on the service of ServiceID or node:write on Node"),
  },
  // health
  { method: "GET", path: "/v1/health/service/:name", need: filtered(SERVICE_LIST) },
  { method: "GET", path: "/v1/health/checks/:service", need: filtered(SERVICE_LIST) },
  {
    method: "GET",
    path: "/v1/health/state/:state",
    need: filtered("node:read on the node, and service:read for service checks"),
  },
  {
    method: "GET",
    path: "/v1/health/node/:node",
    need: filtered("node:read on the node, and service:read for service checks"),
  },
  // kv
  { method: "GET", path: "/v1/kv", need: kvRead },
  { method: "GET", path: "/v1/kv/*", need: kvRead },
  { method: "PUT", path: "/v1/kv/*", need: right("kv", "write", "key") },
  { method: "DELETE", path: "/v1/kv", need: kvDelete },
  { method: "DELETE", path: "/v1/kv/*", need: kvDelete },
  // sessions
  { method: "PUT", path: "/v1/session/create", need: body("session:write on Node") },
  { method: "PUT", path: "/v1/session/destroy/:id", need: right("session", "write", "session") },
  { method: "PUT", path: "/v1/session/renew/:id", need: right("session", "write", "session") },
  {
    method: "GET",
    path: "/v1/session/info/:id",
    need: filtered("session:read on the session's node"),
  },
  {
    method: "GET",
    path: "/v1/session/node/:node",
    need: filtered("session:read on the node"),
  },
  { method: "GET", path: "/v1/session/list", need: filtered("session:read on each node") },
  {
    method: "PUT",
    path: "/v1/txn",
    need: body("key:write for writes, key:read for check-*; get and get-tree results filtered"),
  },
  // status and agent
  { method: "GET", path: "/v1/status/leader", need: open("Consul needs no token here") },
  { method: "GET", path: "/v1/status/peers", need: open("Consul needs no token here") },
  { method: "GET", path: "/v1/agent/self", need: right("agent", "read", "agent") },
  { method: "GET", path: "/v1/agent/members", need: filtered("node:read on each member") },
  { method: "GET", path: "/v1/agent/services", need: filtered("service:read on each service") },
  {
    method: "PUT",
    path: "/v1/agent/service/register",
    need: body("service:write on Name"),
  },
  {
    method: "PUT",
    path: "/v1/agent/service/deregister/:id",
    need: right("service", "write", "service-id"),
  },
  {
    method: "PUT",
    path: "/v1/agent/join/:addr",
    need: {
      kind: "right",
      resource: "agent",
      access: "write",
      segment: "agent",
      openUnjoined: true,
    },
  },
  { method: "PUT", path: "/v1/agent/leave", need: right("agent", "write", "agent") },
  {
    method: "GET",
    path: "/v1/agent/checks",
    need: filtered("node:read for node checks, service:read for service checks"),
  },
  { method: "GET", path: "/v1/agent/service/:id", need: right("service", "read", "service-id") },
  {
    method: "PUT",
    path: "/v1/agent/check/register",
    need: body("service:write on ServiceID's service, node:write on this node without one"),
  },
  { method: "PUT", path: "/v1/agent/check/deregister/:id", need: CHECK_WRITE },
  { method: "PUT", path: "/v1/agent/check/pass/:id", need: CHECK_WRITE },
  { method: "PUT", path: "/v1/agent/check/warn/:id", need: CHECK_WRITE },
  { method: "PUT", path: "/v1/agent/check/fail/:id", need: CHECK_WRITE },
  { method: "PUT", path: "/v1/agent/check/update/:id", need: CHECK_WRITE },
  // berth's own
  { method: "GET", path: "/v1/berth/status", need: right("agent", "read", "agent") },
  { method: "GET", path: "/v1/berth/members", need: filtered("node:read on each member") },
  { method: "GET", path: "/v1/berth/raft/peers", need: right("operator", "read") },
  // agent:read, then the handler keeps the routes of services the token may read.
  { method: "GET", path: "/v1/berth/routes", need: right("agent", "read", "agent") },
  { method: "GET", path: "/v1/berth/instances", need: filtered(SERVICE_LIST) },
  // agent:read, then the handler needs service:read on every service its answer shows.
  { method: "GET", path: "/v1/berth/explain", need: right("agent", "read", "agent") },
  { method: "POST", path: "/v1/berth/raft/transfer-leader", need: right("operator", "write") },
  { method: "DELETE", path: "/v1/berth/raft/peers/:node", need: right("operator", "write") },
  { method: "DELETE", path: "/v1/berth/raft/peers/", need: right("operator", "write") },
  // This agent's runtime (runtime_routes.ts): reading it as /v1/berth/status, a forced GC pauses
  // the agent, as its other writes need agent:write.
  { method: "GET", path: "/v1/berth/loop", need: right("agent", "read", "agent") },
  { method: "POST", path: "/v1/berth/gc", need: right("agent", "write", "agent") },
  // ACME names and their errors, and asking for a renewal: certificates are operator's.
  { method: "GET", path: "/v1/berth/acme", need: right("operator", "read") },
  { method: "POST", path: "/v1/berth/acme/renew/:name", need: right("operator", "write") },
  // Join tokens let a host into the cluster: acl rights, as Consul's own token endpoints.
  { method: "POST", path: "/v1/berth/tokens", need: right("acl", "write") },
  { method: "GET", path: "/v1/berth/tokens", need: right("acl", "read") },
  { method: "DELETE", path: "/v1/berth/tokens/:id", need: right("acl", "write") },
  // HTTPS certificates (certs.ts): the cluster's edge, as the raft peers.
  { method: "GET", path: "/v1/berth/certs", need: right("operator", "read") },
  { method: "GET", path: "/v1/berth/certs/:name", need: right("operator", "read") },
  { method: "PUT", path: "/v1/berth/certs/:name", need: right("operator", "write") },
  { method: "DELETE", path: "/v1/berth/certs/:name", need: right("operator", "write") },
  // A snapshot carries every KV value and the ACL policies, and a restore replaces them:
  // Consul asks acl:write (in practice the management token) for both.
  { method: "GET", path: "/v1/snapshot", need: right("acl", "write") },
  { method: "PUT", path: "/v1/snapshot", need: right("acl", "write") },
  // Consul gates /v1/agent/metrics by agent:read; Prometheus sends the token with
  // `authorization: {credentials: …}`, or the anonymous token gets agent:read.
  { method: "GET", path: "/metrics", need: right("agent", "read", "agent") },
  // ACL policies and tokens (acl_endpoints.ts): management tokens only, as Consul without
  // fine-grained acl rules; token/self needs a known token, nothing more.
  { method: "PUT", path: "/v1/acl/policy", need: right("acl", "write") },
  { method: "GET", path: "/v1/acl/policy/name/:name", need: right("acl", "read") },
  { method: "GET", path: "/v1/acl/policy/:id", need: right("acl", "read") },
  { method: "PUT", path: "/v1/acl/policy/:id", need: right("acl", "write") },
  { method: "DELETE", path: "/v1/acl/policy/:id", need: right("acl", "write") },
  { method: "GET", path: "/v1/acl/policies", need: right("acl", "read") },
  { method: "PUT", path: "/v1/acl/token", need: right("acl", "write") },
  { method: "GET", path: "/v1/acl/token/self", need: right("none", "read") },
  { method: "GET", path: "/v1/acl/token/:accessor", need: right("acl", "read") },
  { method: "PUT", path: "/v1/acl/token/:accessor", need: right("acl", "write") },
  { method: "DELETE", path: "/v1/acl/token/:accessor", need: right("acl", "write") },
  { method: "GET", path: "/v1/acl/tokens", need: right("acl", "read") },
  { method: "PUT", path: "/v1/acl/token/:accessor/clone", need: right("acl", "write") },
  {
    method: "PUT",
    path: "/v1/acl/bootstrap",
    need: open("Consul's one-time bootstrap: refused once the cluster had a management token"),
  },
  // The dashboard's page; every API call it makes is checked on its own.
  { method: "GET", path: "/ui", need: open("static page") },
  { method: "GET", path: "/ui/", need: open("static page") },
  { method: "GET", path: "/", need: open("redirect to /ui") },
];

const BY_ROUTE = new Map(ROUTE_RULES.map((r) => [`${r.method} ${r.path}`, r]));

/** The rule of the route registered as `method` + `path`; undefined when there is none. */
export function ruleOf(method: string, path: string): RouteRule | undefined {
  return BY_ROUTE.get(`${method} ${path}`);
}

/** The need of a rule for a request with these query parameters. */
export function needOf(rule: RouteRule, query: (name: string) => string | undefined): Need {
  return typeof rule.need === "function" ? rule.need(query) : rule.need;
}
