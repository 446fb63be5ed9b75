/**
 * Native routes for what Consul has no equivalent of: `/v1/berth/status`, `/v1/berth/instances`
 * (our Instance shape with its derived health, instance_view.ts), `/v1/berth/members`,
 * `/v1/berth/routes` (the proxy's routes, TCP and UDP listeners failed or not; those of the services the
 * token may read), `/v1/berth/raft/*` and `/v1/snapshot`.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import { type Deps, prepareRead, setReadHeaders } from "./deps.ts";
import { notSupported } from "./agent_routes.ts";
import { badRequest, HttpError } from "./http_error.ts";
import { instanceView } from "./instance_view.ts";
import type { Authorizer } from "../acl/authorizer.ts";
import { authzOf, keepAllowed, markFiltered } from "./acl_enforce.ts";
import { instanceReadable } from "./catalog.ts";
import { restoreFromStream, userSnapshotStream } from "./snapshot_stream.ts";
import {
  certKeysProblem,
  PASSPHRASE_HEADER,
  passphraseOf,
  SECRETS_HEADER,
} from "./snapshot_secrets.ts";

export function berthRoutes(app: Hono, d: Deps): void {
  const { store, cluster } = d;

  app.get("/v1/berth/status", (c) => {
    setReadHeaders(c, d, Math.max(1, store.appliedIndex()));
    return c.json(cluster.status());
  });

  // The leader's view (it hears from every member); `?stale`: this member's own. The members
  // list shows what node:read allows; raft peers needs operator:read (checked before).
  const members = (filtered: boolean) => async (c: Context) => {
    const list = c.req.query("stale") === undefined
      ? await cluster.membersFromLeader()
      : cluster.members();
    setReadHeaders(c, d, Math.max(1, store.appliedIndex()));
    return c.json(
      filtered ? keepAllowed(c, list, (a, m) => a.allows("node", m.name, "read")) : list,
    );
  };
  app.get("/v1/berth/members", members(true));
  app.get("/v1/berth/raft/peers", members(false));

  app.get("/v1/berth/routes", async (c) => {
    setReadHeaders(c, d, Math.max(1, store.tableIndex("instances")));
    // The proxy off (--proxy-http off, --proxy-https off): no listener, no routes.
    const view = await d.routes() ??
      { listen: null, https: null, http: [], tcp: [], conflicts: [], ejected: [] };
    // Routes of the services the token may read (agent:read was checked before). A conflict
    // line names services in free text: shown only to a token that may read every service.
    const readable = (a: Authorizer, r: { service: string }) =>
      a.allows("service", r.service, "read");
    const everyService = [...d.catalog.services().keys()].every((s) =>
      authzOf(c).allows("service", s, "read")
    );
    if (!everyService && view.conflicts.length > 0) markFiltered(c);
    return c.json({
      listen: view.listen,
      https: view.https,
      http: keepAllowed(c, view.http, readable),
      tcp: keepAllowed(c, view.tcp, readable),
      udp: keepAllowed(c, view.udp ?? [], readable),
      conflicts: everyService ? view.conflicts : [],
      ejected: keepAllowed(c, view.ejected ?? [], (a, e) => {
        const service = store.instance(e.instance)?.service;
        return service !== undefined && a.allows("service", service, "read");
      }),
    });
  });

  app.get("/v1/berth/instances", async (c) => {
    const service = c.req.query("service");
    await prepareRead(
      c,
      d,
      service === undefined
        ? {
          index: () => store.tableIndex("instances"),
          watch: { table: "instances" },
        }
        : { index: () => store.serviceIndex(service), watch: { service } },
    );
    const nodeStatus = new Map(store.nodes().map((n) => [n.name, n]));
    return c.json(
      keepAllowed(c, store.instances(service), instanceReadable)
        .map((i) => instanceView(i, nodeStatus.get(i.node))),
    );
  });

  // The members this member knows, sorted, for an answer that asks for one of them.
  const memberNames = () => {
    const names = cluster.members().map((m) => m.name).sort();
    return names.length === 0 ? "(none)" : names.join(", ");
  };

  app.post("/v1/berth/raft/transfer-leader", async (c) => {
    if (d.admin.transferLeader === undefined) throw notSupported("raft transfer-leader");
    const to = c.req.query("to");
    if (to !== undefined && to.trim() === "") {
      throw badRequest(`?to= is empty: name a member (${memberNames()}) or leave ?to out`);
    }
    await d.admin.transferLeader(to ?? null);
    return c.json(true);
  });

  const removePeer = async (c: Context, node: string) => {
    if (d.admin.removePeer === undefined) throw notSupported("raft remove-peer");
    if (node.trim() === "") {
      throw badRequest(
        `the member name is empty: DELETE /v1/berth/raft/peers/NAME, NAME one of ${memberNames()}`,
      );
    }
    await d.admin.removePeer(node);
    return c.json(true);
  };
  app.delete("/v1/berth/raft/peers/:node", (c) => removePeer(c, c.req.param("node")));
  app.delete("/v1/berth/raft/peers/", (c) => removePeer(c, ""));

  app.get("/v1/snapshot", async (c) => {
    const secrets = c.req.query("include-secrets");
    const passphrase = passphraseOf(c.req.header(PASSPHRASE_HEADER));
    const include = secrets !== undefined && secrets !== "false";
    if (include && passphrase === undefined) {
      throw badRequest(`include-secrets needs a passphrase in the ${PASSPHRASE_HEADER} header`);
    }
    await prepareRead(c, d, { index: () => store.appliedIndex(), watch: { all: true } });
    // Checked before the answer starts: the sealed section opens every certificate key.
    const problem = include ? certKeysProblem(store.edgeCerts(), d.secrets) : undefined;
    if (problem !== undefined) {
      throw new HttpError(503, `include-secrets: ${problem}; retry, or save without secrets`);
    }
    return c.body(
      userSnapshotStream(store, {
        passphrase: include ? passphrase : undefined,
        secrets: d.secrets,
      }),
      200,
      {
        "Content-Type": "application/octet-stream",
      },
    );
  });

  app.put("/v1/snapshot", async (c) => {
    const passphrase = passphraseOf(c.req.header(PASSPHRASE_HEADER));
    const body = c.req.raw.body ?? new ReadableStream<Uint8Array>({ start: (k) => k.close() });
    const r = await restoreFromStream(body, (cmd) => cluster.propose(cmd), {
      passphrase,
      secrets: d.secrets,
    });
    c.header(SECRETS_HEADER, r.secrets);
    return c.json(true);
  });
}
