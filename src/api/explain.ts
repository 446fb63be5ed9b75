/**
 * `GET /v1/berth/explain`: why a container, a service or a URL is (or is not) registered,
 * served and routed. Exactly one of:
 * - `?container=NAME|ID-PREFIX`: the Docker watcher's view on the member where it runs (labels
 *   read and rejected, each port and the instance it became or why none), with each instance's
 *   state in the store. A container this member does not run is asked of the members whose
 *   instances the store says it runs on, else of every member (`&node=NAME`: of that member
 *   only; `&local`: of none); a name several members run is 409 with the list.
 * - `?service=NAME`: its instances (health from each source, check output, weight, node), its
 *   routes (hosts, prefixes, TCP ports, who serves each, conflicts), route options, and each
 *   member's proxy ejections (other members asked over the cluster transport, time-bounded, never
 *   with the caller's token: explain_peers.ts).
 * - `?url=http://host/path` (or `host/path`, `/path`): the route it matches or why none, the
 *   redirect/HTTPS rules, the instances the balancer chooses from and the one it would pick now
 *   (`&key=`: the hash key of `berth.lb=hash`/`sticky_cookie`; this member's ejected skipped).
 * - `?target=…`: a URL when it holds `/`, else a service when one has that name, else a
 *   container.
 * Rights: agent:read (acl_routes.ts), then service:read on every service the answer shows, and
 * for a container node:read on the member that runs it.
 *
 * The proxy's and the watcher's views come through `Deps.explain`, wired by the agent; their
 * shapes are those of src/proxy/route_explain.ts and src/docker/explain_container.ts.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import { proxyOffUrl, refusedText } from "../proxy/route_explain.ts";
import { type InstanceExplain, refusedWhy, serviceSummary } from "./explain_summary.ts";
export { type InstanceExplain, serviceSummary } from "./explain_summary.ts";
import { parseTarget, type UrlTarget } from "../lib/request_target.ts";
export type { ExplainSources } from "./explain_sources.ts";
export type { MemberInfo } from "../proxy/route_explain.ts";
import type { Instance, NodeInfo } from "../store/mod.ts";
import { instanceHealth } from "../store/mod.ts";
import { type Deps, setReadHeaders } from "./deps.ts";
import { badRequest, HttpError } from "./http_error.ts";
import { authzOf, keepAllowed, requireRight } from "./acl_enforce.ts";
import { instanceReadable } from "./catalog.ts";
import { tlsLines } from "./explain_tls.ts";
import { clientBytes } from "../lib/cidr.ts";
import {
  type ContainerAnswer,
  type MemberEjections,
  memberNodes,
  type PeerContainer,
  peerContainers,
  peerEjections,
  type RejectedLabel,
  rejectedLabels,
} from "./explain_peers.ts";

/** What explain shows for a service the token may not read. */
export const HIDDEN_SERVICE = "(another service)";

/** Longest container or service name taken. */
export const EXPLAIN_NAME_CHARS_MAX = 512;

type Kind = "container" | "service" | "url";
const KINDS: readonly Kind[] = ["container", "service", "url"];

function instanceExplain(i: Instance, node: NodeInfo | undefined): InstanceExplain {
  const h = instanceHealth(i, node);
  return {
    id: i.id,
    node: i.node,
    address: i.address,
    port: i.port,
    weight: i.weight,
    container: i.meta.container ?? null,
    status: h.status,
    output: h.output,
    served: h.served,
    sources: { node: h.node, docker: h.docker, check: h.check },
    checks: (i.checks ?? []).map((c) => ({
      id: c.id,
      name: c.name,
      status: c.status,
      output: c.output,
    })),
  };
}

/** The one kind asked for and its value; 400 for none, several, empty or too long. */
function askedFor(c: Context, d: Deps): { kind: Kind; value: string } {
  const key = c.req.query("key");
  if (key !== undefined && key.length > EXPLAIN_NAME_CHARS_MAX) {
    throw badRequest(`?key= is longer than ${EXPLAIN_NAME_CHARS_MAX} characters`);
  }
  if ((c.req.query("node")?.length ?? 0) > EXPLAIN_NAME_CHARS_MAX) {
    throw badRequest(`?node= is longer than ${EXPLAIN_NAME_CHARS_MAX} characters`);
  }
  const given = [...KINDS, "target" as const].filter((k) => c.req.query(k) !== undefined);
  if (given.length !== 1) {
    throw badRequest(
      `explain takes exactly one of ?container=, ?service=, ?url= or ?target= (got ${
        given.length === 0 ? "none" : given.join(", ")
      })`,
    );
  }
  const asked = given[0]!;
  const value = c.req.query(asked)!.trim();
  if (value === "") throw badRequest(`?${asked}= is empty`);
  const max = asked === "url" || asked === "target" ? 2048 : EXPLAIN_NAME_CHARS_MAX;
  if (value.length > max) throw badRequest(`?${asked}= is longer than ${max} characters`);
  if (asked !== "target") return { kind: asked, value };
  if (value.includes("/")) return { kind: "url", value };
  return { kind: d.store.instances(value).length > 0 ? "service" : "container", value };
}

export function explainRoutes(app: Hono, d: Deps): void {
  app.get("/v1/berth/explain", async (c) => {
    const asked = askedFor(c, d);
    setReadHeaders(c, d, Math.max(1, d.store.tableIndex("instances")));
    switch (asked.kind) {
      case "service":
        return c.json(await explainService(c, d, asked.value));
      case "url":
        return c.json(await explainUrlAnswer(c, d, asked.value));
      case "container": {
        if (c.req.query("target") === undefined) {
          return c.json(await explainContainerAnswer(c, d, asked.value));
        }
        try {
          return c.json(await explainContainerAnswer(c, d, asked.value));
        } catch (e) {
          // A bare name that is no service either: say that nothing has that name.
          if (!(e instanceof HttpError) || e.status !== 404) throw e;
          throw new HttpError(
            404,
            `no service, container or URL named ${JSON.stringify(asked.value)} (no service ` +
              `has that name; a URL holds a /): ${e.message}`,
          );
        }
      }
    }
  });
}

/** This member's ejections of `ids` and every other member's. */
async function ejections(
  d: Deps,
  ids: ReadonlySet<string>,
): Promise<MemberEjections[]> {
  const view = await d.routes();
  const local: MemberEjections = view === null
    ? { member: d.node, state: "no-proxy", ejected: [], error: null }
    : {
      member: d.node,
      state: "answered",
      ejected: (view.ejected ?? []).filter((e) => ids.has(e.instance))
        .map((e) => ({ instance: e.instance, untilMs: e.untilMs })),
      error: null,
    };
  const peer = d.explain.peer;
  if (peer === undefined) return [local];
  const remote = await peerEjections(peer, memberNodes(d.store), d.node, ids);
  return [local, ...remote];
}

async function explainService(c: Context, d: Deps, service: string) {
  requireRight(c, "service", service, "read");
  const nodes = new Map(d.store.nodes().map((n) => [n.name, n]));
  const stored = d.store.instances(service);
  // As /v1/berth/instances: an instance also needs node:read on its node.
  const readable = keepAllowed(c, stored, instanceReadable);
  const instances = readable.map((i) => instanceExplain(i, nodes.get(i.node)));
  const ids = new Set(instances.map((i) => i.id));
  const table = d.explain.serviceRoutes?.(service) ?? null;
  // The proxy's members, as far as the token may read their instances; another service that
  // serves one of its routes is named only to a token that may read that service.
  const authz = authzOf(c);
  const hidden = new Set<string>();
  const shown = (s: string | null): string | null => {
    if (s === null || s === service || authz.allows("service", s, "read")) return s;
    hidden.add(s);
    return HIDDEN_SERVICE;
  };
  const routes = table === null ? null : {
    ...table,
    http: table.http.map((r) => ({ ...r, servedBy: shown(r.servedBy) })),
    tcp: table.tcp.map((t) => ({ ...t, servedBy: shown(t.servedBy) })),
    udp: table.udp?.map((u) => ({ ...u, servedBy: shown(u.servedBy) })),
    options: {
      ...table.options,
      members: table.options.members.filter((m) => ids.has(m.instance)),
    },
  };
  if (routes !== null && hidden.size > 0) {
    routes.conflicts = routes.conflicts.map((l) =>
      [...hidden].some((h) => l.includes(h))
        ? `a conflict with ${HIDDEN_SERVICE} (one this token may not read)`
        : l
    );
  }
  if (stored.length === 0 && routes === null) {
    throw new HttpError(404, `no service ${JSON.stringify(service)}: no instance is registered`);
  }
  const view = await d.routes();
  const tcpListeners = (view?.tcp ?? []).filter((t) => t.service === service);
  const udpListeners = (view?.udp ?? []).filter((t) => t.service === service);
  const [members, rejected] = await Promise.all([
    ejections(d, ids),
    serviceRejected(d, readable),
  ]);
  return {
    kind: "service" as const,
    service,
    member: d.node,
    proxy: view === null ? "off" : "on",
    summary: serviceSummary({
      service,
      instances,
      hidden: stored.length - instances.length,
      routes,
      members,
      proxyOn: view !== null,
      rejected,
    }),
    instances,
    routes,
    rejected,
    tcpListeners,
    udpListeners,
    ejections: members,
  };
}

/** The rejected labels of the containers behind `instances`, asked of their members. */
function serviceRejected(d: Deps, instances: readonly Instance[]): Promise<RejectedLabel[]> {
  return rejectedLabels(
    instances,
    d.node,
    d.explain.container,
    d.explain.peer,
    memberNodes(d.store),
  );
}

async function explainUrlAnswer(c: Context, d: Deps, text: string) {
  let target: UrlTarget;
  try {
    target = parseTarget(text);
  } catch (e) {
    if (e instanceof RangeError) throw badRequest(`url: ${e.message}`);
    throw e;
  }
  const source = d.explain.url;
  if (source === undefined) {
    return {
      kind: "url" as const,
      member: d.node,
      proxy: "off",
      ...proxyOffUrl(target),
      rules: [],
      ejections: [],
    };
  }
  const view = await d.routes();
  const ejected = new Set((view?.ejected ?? []).map((x) => x.instance));
  const key = c.req.query("key");
  const httpsPort = view?.https == null ? null : Number(/:(\d+)$/.exec(view.https)?.[1] ?? 443);
  const found = source(target, {
    ejected,
    key,
    httpsPort,
    ...(key !== undefined && clientBytes(key) !== null ? { client: key } : {}),
  });
  if (found.matched !== null) requireRight(c, "service", found.matched.service, "read");
  // The members whose instances the token may read (node:read on their nodes); the pick only
  // when it is one of them.
  const members = found.route === null ? [] : keepAllowed(
    c,
    found.route.members,
    (a, m) => instanceReadable(a, { service: found.route!.service, node: m.node }),
  );
  const shown = members.some((m) => m.instance === found.pick);
  const e = found.route === null ? found : {
    ...found,
    route: { ...found.route, members },
    pick: shown ? found.pick : null,
    pickNote: shown || found.pick === null
      ? found.pickNote
      : "an instance on a node this token may not read",
  };
  const https = target.scheme === "https";
  const rules: string[] = [...(e.steps ?? [])];
  if (e.route?.hsts) {
    rules.push(
      `Strict-Transport-Security ${https ? "on the response" : "over HTTPS only"}: ${e.route.hsts}`,
    );
  }
  const tls = !https || e.matched === null ? [] : tlsLines({
    host: target.host,
    https: view?.https ?? null,
    certs: d.store.edgeCerts(),
    acme: e.route?.acme ?? false,
    acmeState: target.host === null ? undefined : d.store.acme.name(target.host),
    nowMs: Date.now(),
  });
  const ids = new Set((e.route?.members ?? []).map((m) => m.instance));
  const rejected = e.route === null ? [] : await serviceRejected(
    d,
    keepAllowed(c, d.store.instances(e.route.service), instanceReadable),
  );
  const refused = e.route?.refused;
  const reasons = refused
    ? e.reasons.map((l) => l === refusedText(refused) ? l + refusedWhy(refused.key, rejected) : l)
    : e.reasons;
  return {
    kind: "url" as const,
    member: d.node,
    proxy: "on",
    ...e,
    reasons,
    rejected,
    tls,
    rules,
    ejections: e.route === null ? [] : await ejections(d, ids),
  };
}

/** A container's answer (from this member or `member`) with each instance's store state. */
function containerAnswer(
  c: Context,
  d: Deps,
  found: Extract<ContainerAnswer, { container: unknown }>,
  member: string,
) {
  const nodes = new Map(d.store.nodes().map((n) => [n.name, n]));
  // Its labels and env are the member's, shown also for a container that asks for no instance.
  requireRight(c, "node", member, "read");
  for (const i of found.container.instances) requireRight(c, "service", i.service, "read");
  const instances = found.container.instances.map((w) => {
    const stored = d.store.instance(w.id);
    return {
      ...w,
      registered: stored !== undefined && stored.node === member,
      state: stored === undefined ? null : instanceExplain(stored, nodes.get(stored.node)),
    };
  });
  return {
    kind: "container" as const,
    member,
    seenAgoMs: found.seenAgoMs,
    ...found.container,
    instances,
  };
}

/**
 * The container on this member, else on the members the store says run it, else on every
 * member (a container that registers nothing is the usual question); the others are asked over
 * the cluster transport (explain_peers.ts). `?node=` asks that member only; `&local` asks no
 * other. A name found on several members is 409 with the list (names are unique per host only).
 */
async function explainContainerAnswer(c: Context, d: Deps, query: string) {
  const local: ContainerAnswer = await d.explain.container?.(query) ??
    { error: "the Docker watcher is off on this member" };
  const node = c.req.query("node");
  const peer = d.explain.peer;
  const found: { member: string; answer: Extract<ContainerAnswer, { container: unknown }> }[] = [];
  let asked: PeerContainer[] = [];
  let owners: string[] = [];
  if (node !== undefined && node !== d.node) {
    const n = memberNodes(d.store).find((m) => m.name === node);
    if (n === undefined) throw new HttpError(404, `?node=${node}: no cluster member has that name`);
    if (peer === undefined) {
      throw new HttpError(404, `container ${JSON.stringify(query)}: ${node} cannot be asked`);
    }
    asked = await peerContainers(peer, [n], d.node, query);
  } else {
    if ("container" in local) found.push({ member: d.node, answer: local });
    if (node === undefined && c.req.query("local") === undefined && peer !== undefined) {
      owners = ownersOf(d, query);
      const members = memberNodes(d.store);
      const ask = owners.length > 0
        ? members.filter((m) => owners.includes(m.name))
        : found.length === 0
        ? members
        : [];
      asked = await peerContainers(peer, ask, d.node, query);
    }
  }
  for (const a of asked) {
    if (a.answer !== null && "container" in a.answer) {
      found.push({ member: a.member, answer: a.answer });
    }
  }
  if (found.length === 1) return containerAnswer(c, d, found[0]!.answer, found[0]!.member);
  if (found.length > 1) {
    const list = found.map((f) => `${f.member} (${f.answer.container.id.slice(0, 12)})`);
    throw new HttpError(
      409,
      `container ${JSON.stringify(query)} runs on several members: ${list.join(", ")}; name ` +
        "one with ?node= (berth explain --node NAME) or give an id prefix",
    );
  }
  const failed = asked.filter((a) => a.failure !== null);
  if (owners.length > 0 && failed.length === asked.length && asked.length > 0) {
    throw new HttpError(
      502,
      `container ${JSON.stringify(query)} runs on ${owners.join(", ")}, which could not be ` +
        `asked: ${failed.map((a) => a.failure).join("; ")}`,
    );
  }
  const why = node !== undefined && node !== d.node
    ? `not on ${node}: ${
      (asked[0]?.answer as { error?: string } | null)?.error ?? asked[0]?.failure
    }`
    : "error" in local
    ? local.error
    : "found here";
  const unknown = failed.map((a) => `${a.member} (${a.failure})`);
  const others = asked.length === 0 || (node !== undefined && node !== d.node)
    ? ""
    : `, nor on the ${asked.length - unknown.length} other member(s) that answered` +
      (unknown.length === 0 ? "" : `; not known: ${unknown.join(", ")}`);
  throw new HttpError(404, `container ${JSON.stringify(query)}: ${why}${others}`);
}

/** The other members whose registered instances name container `query` (name or id prefix). */
function ownersOf(d: Deps, query: string): string[] {
  const q = query.startsWith("/") ? query.slice(1) : query;
  const idPrefix = /^[0-9a-f]{4,64}$/i.test(q) ? q.toLowerCase() : null;
  const owners = new Set<string>();
  for (const i of d.store.instances()) {
    if (i.node === d.node || i.containerId === null) continue;
    if (i.meta.container === q || (idPrefix !== null && i.containerId.startsWith(idPrefix))) {
      owners.add(i.node);
    }
  }
  return [...owners].sort();
}
