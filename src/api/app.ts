/**
 * The Hono app: the ACL check of every route (acl_enforce.ts, rights in acl_routes.ts), the
 * route modules, and the one error handler that turns what a client did wrong into a status and
 * one plain line.
 *
 * @module
 */
import { Hono } from "hono";
import { type AclDefault, TokenCache } from "../acl/mod.ts";
import type { Cluster } from "../cluster/mod.ts";
import type { Store } from "../store/mod.ts";
import { CommandError } from "../store/mod.ts";
import { aclEndpoints } from "./acl_endpoints.ts";
import { aclMiddleware } from "./acl_enforce.ts";
import { agentRoutes } from "./agent_routes.ts";
import { agentCheckRoutes } from "./agent_checks.ts";
import { berthRoutes } from "./berth_routes.ts";
import { explainRoutes } from "./explain.ts";
import type { ExplainSources } from "./explain_sources.ts";
import { runtimeRoutes } from "./runtime_routes.ts";
import { acmeRoutes } from "./acme_routes.ts";
import { Blocker } from "./blocker.ts";
import { CatalogIndex } from "./catalog_index.ts";
import { catalogRoutes } from "./catalog.ts";
import { healthRoutes } from "./health_routes.ts";
import { type ClusterAdmin, consulHeaders, type Deps, type RoutesView } from "./deps.ts";
import { clusterHttpError, HttpError } from "./http_error.ts";
import { kvRoutes } from "./kv.ts";
import { sessionRoutes } from "./sessions.ts";
import { txnRoutes } from "./txn.ts";
import { tokenRoutes } from "./tokens.ts";
import { certRoutes } from "./certs.ts";
import type { SecretBox } from "../pki/mod.ts";
import { renderMetrics } from "./metrics.ts";
import { UI_HTML } from "./ui.ts";
import { controlsEscaped, errorText } from "../lib/error_text.ts";
import type { LoopProbe } from "../lib/loop_probe.ts";
import type { GapRecorder } from "../lib/gap_recorder.ts";

export interface ApiOptions {
  store: Store;
  cluster: Cluster;
  /** This agent's node name: agent registrations belong to it. */
  node: string;
  /** Address registered for agent services that give none. */
  advertise: string;
  /** Reported as Consul's datacenter (default "dc1"). */
  datacenter?: string;
  version: string;
  /**
   * What a token may do where its policies say nothing, and the anonymous token's rights
   * (`--acl-default`; src/acl/authorizer.ts fromDefault). Default "deny".
   */
  aclDefault?: AclDefault;
  /** Shown (secrets redacted) in /v1/agent/self as DebugConfig. */
  config?: Record<string, unknown>;
  /** Consensus operations behind join/leave/raft; missing ones answer 501. */
  admin?: Partial<ClusterAdmin>;
  /** The proxy's routes and TCP listener states for /v1/berth/routes; null: the proxy is off. */
  routes?: () => RoutesView | null | Promise<RoutesView | null>;
  /** More Prometheus text appended to /metrics (the proxy's and DNS's, from their workers). */
  extraMetrics?: () => string | Promise<string>;
  /** Most blocking queries waiting at once (default BLOCKED_READS_MAX); more get 429. */
  blockedReadsMax?: number;
  /** Ends every blocking query at once when aborted (shutdown). */
  signal?: AbortSignal;
  /**
   * Told when a TTL check of this node got a report: the agent's CheckTimers restarts its TTL
   * and answers the check's expiry proposal in flight, if any (the report waits for it).
   */
  onTtlReport?: (checkId: string) => Promise<void> | null;
  /** Randomness for blocking-query jitter, in [0, 1) (default Math.random). */
  random?: () => number;
  /** Clock stamped into session and lock commands, ms (default Date.now). */
  now?: () => number;
  /**
   * Seals the keys of certificates put through /v1/berth/certs (the agent's cluster key box);
   * absent: such a PUT answers 503.
   */
  secrets?: SecretBox;
  /** The event-loop probe /v1/berth/loop reads (the agent's under BERTH_LOOP_PROBE=1). */
  loopProbe?: LoopProbe;
  /** The heartbeat intervals /v1/berth/loop reads with it (the cluster's). */
  heartbeatGaps?: GapRecorder;
  /**
   * The proxy's and the Docker watcher's views for /v1/berth/explain (absent ones: off), and
   * `peer`, which asks other members over the cluster transport (absent: none is asked).
   */
  explain?: ExplainSources;
}

/** The catalog index of an app: it follows the store until `signal` aborts. */
function catalogIndex(store: ApiOptions["store"], signal: AbortSignal | undefined): CatalogIndex {
  const index = new CatalogIndex(store);
  signal?.addEventListener("abort", () => index.close(), { once: true });
  return index;
}

/** Builds the API. Serve it with ApiServer, or call `app.request()` in tests. */
export function createApp(opts: ApiOptions): Hono {
  // Made before the blocker: it must have taken a change in before a blocked read looks at it.
  const catalog = catalogIndex(opts.store, opts.signal);
  const d: Deps = {
    store: opts.store,
    cluster: opts.cluster,
    admin: opts.admin ?? {},
    node: opts.node,
    advertise: opts.advertise,
    datacenter: opts.datacenter ?? "dc1",
    version: opts.version,
    config: opts.config ?? {},
    catalog,
    blocker: new Blocker(opts.store, {
      waitersMax: opts.blockedReadsMax,
      signal: opts.signal,
      topics: { services: (c) => catalog.servicesIndex() >= c.index },
    }),
    random: opts.random ?? Math.random,
    now: opts.now ?? Date.now,
    startedAtMs: performance.timeOrigin,
    extraMetrics: opts.extraMetrics,
    routes: opts.routes ?? (() => null),
    onTtlReport: opts.onTtlReport ?? (() => null),
    secrets: opts.secrets,
    explain: opts.explain ?? {},
  };
  const app = new Hono();

  // Every /v1/ answer carries X-Consul-Index, -KnownLeader and -LastContact, errors, 404s and
  // unknown routes included: Consul clients read X-Consul-Index on every response. Reads set
  // them with their own index; anything else reports the applied index.
  app.use("/v1/*", async (c, next) => {
    await next();
    if (c.res.headers.has("X-Consul-Index")) return;
    for (const [k, v] of Object.entries(consulHeaders(d, Math.max(1, d.store.appliedIndex())))) {
      c.res.headers.set(k, v);
    }
  });

  const tokens = new TokenCache(opts.store, opts.aclDefault ?? "deny");
  opts.signal?.addEventListener("abort", () => tokens.close(), { once: true });
  app.use(
    "*",
    aclMiddleware({
      resolve: (secret) => tokens.resolve(secret),
      store: opts.store,
      node: opts.node,
    }),
  );

  catalogRoutes(app, d);
  healthRoutes(app, d);
  kvRoutes(app, d);
  sessionRoutes(app, d);
  txnRoutes(app, d);
  agentRoutes(app, d);
  agentCheckRoutes(app, d);
  berthRoutes(app, d);
  explainRoutes(app, d);
  runtimeRoutes(app, opts.loopProbe ?? null, opts.heartbeatGaps ?? null);
  acmeRoutes(app, d);
  aclEndpoints(app, d);
  tokenRoutes(app, d);
  certRoutes(app, d);

  app.get("/metrics", async (c) =>
    c.text(await renderMetrics(d, Date.now()), 200, {
      "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
    }));
  app.get("/ui", (c) => c.html(UI_HTML));
  app.get("/ui/", (c) => c.html(UI_HTML));
  app.get("/", (c) => c.redirect("/ui"));

  const allowed = methodsByPath(app);
  app.notFound((c) => {
    const methods = allowed(c.req.path);
    const path = controlsEscaped(c.req.path); // decoded: %0A is a line break
    if (methods.length > 0) {
      c.header("Allow", methods.join(", "));
      return c.text(
        `method ${c.req.method} not allowed on ${path} (use ${methods.join(" or ")})\n`,
        405,
      );
    }
    return c.text(`no route for ${c.req.method} ${path}\n`, 404);
  });
  // An error answer is one line: what the request brought into the message is escaped.
  app.onError((e, c) => {
    if (e instanceof HttpError) return c.text(`${controlsEscaped(e.message)}\n`, e.status);
    if (e instanceof CommandError) return c.text(`${controlsEscaped(e.message)}\n`, 400);
    const ce = clusterHttpError(e);
    if (ce !== undefined) return c.text(`${controlsEscaped(ce.message)}\n`, ce.status);
    console.error(`api: ${c.req.method} ${c.req.path} failed: ${(e as Error).stack ?? e}`);
    return c.text(`internal error: ${errorText(e)}\n`, 500);
  });
  return app;
}

/** For a 405: the methods some route serves at a path. */
function methodsByPath(app: Hono): (path: string) => string[] {
  const routes = app.routes
    .filter((r) => r.method !== "ALL" && r.path !== "/*")
    .map((r) => ({
      method: r.method,
      re: new RegExp(
        "^" + r.path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\/\*$/, "(/.*)?")
          .replace(/:[^/]+/g, "[^/]+") +
          "$",
      ),
    }));
  return (path) => [...new Set(routes.filter((r) => r.re.test(path)).map((r) => r.method))];
}
