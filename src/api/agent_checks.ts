/**
 * `/v1/agent/check/*`, `/v1/agent/checks` and `/v1/agent/service/:id`: checks registered
 * through this agent, which owns them (they are on its node), and the reports of TTL checks.
 *
 * - `PUT /v1/agent/check/register`: a check definition (check_definition.ts); `ServiceID` binds
 *   it to a service instance of this node, otherwise it is a node-level check.
 * - `PUT /v1/agent/check/deregister/:id`
 * - `PUT /v1/agent/check/pass|warn|fail/:id?note=…` and `PUT /v1/agent/check/update/:id` with
 *   `{Status, Output}`: a TTL check's report. It restarts the check's TTL (the agent's
 *   CheckTimers, told through `onTtlReport`) and is proposed only when the status or output
 *   changes, so a check passing every few seconds costs no log entry; always after a TTL expiry
 *   (in flight: the report waits for it and follows it, or applied: output TTL_EXPIRED_OUTPUT),
 *   which the local replica may not show yet.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import { checkOnNode, checksOfNode, type CheckStatus, type CheckView } from "../store/mod.ts";
import { CommandError, rules } from "../store/mod.ts";
import { checkFromConsul } from "./check_definition.ts";
import { agentService, consulCheck } from "./consul_shapes.ts";
import { decodePath, type Deps, prepareRead, proposeChecked } from "./deps.ts";
import { TTL_EXPIRED_OUTPUT } from "../health/check_timers.ts";
import { optionalField } from "./fields.ts";
import { listParams, SAMPLES } from "./list_params.ts";
import { badRequest, HttpError, readJsonObject } from "./http_error.ts";
import { keepAllowed, requireRight } from "./acl_enforce.ts";
import { requireCheckTakeover } from "./register_rights.ts";
import { checkReadable } from "./health_routes.ts";

const REPORTS: Record<string, CheckStatus> = { pass: "passing", warn: "warning", fail: "critical" };

export function agentCheckRoutes(app: Hono, d: Deps): void {
  const { store } = d;

  /** A check of this agent's node that a client may change (not liveness, not a derived one). */
  const ownCheck = (
    ctx: Context,
    raw: string,
  ): CheckView & { registered: NonNullable<CheckView["registered"]> } => {
    const id = decodePath(raw, "check id");
    const c = checkOnNode(store, d.node, id);
    if (c === undefined) throw new HttpError(404, `Unknown check ID "${id}"`);
    // Consul's vetCheckUpdate: the service's write right, or the node's for a node check.
    if (c.serviceId !== "") requireRight(ctx, "service", c.serviceName, "write");
    else requireRight(ctx, "node", d.node, "write");
    if (c.registered === null) {
      throw badRequest(`check "${id}" is derived by berth (liveness, container, label check)`);
    }
    return c as CheckView & { registered: NonNullable<CheckView["registered"]> };
  };

  app.get("/v1/agent/checks", async (c) => {
    const { filter } = listParams(c, SAMPLES.check, d.node);
    await prepareRead(c, d, {
      index: () => Math.max(store.tableIndex("instances"), store.tableIndex("nodes")),
      watch: { node: d.node },
    });
    const checks = keepAllowed(c, checksOfNode(store, d.node), checkReadable)
      .filter((x) => x.id !== "serfHealth").map(consulCheck).filter((x) =>
        filter === null || filter.test(x)
      );
    return c.json(Object.fromEntries(checks.map((x) => [x.CheckID, x])));
  });

  app.get("/v1/agent/service/:id", async (c) => {
    const id = decodePath(c.req.param("id"), "service id");
    // Looked up and checked before a blocking query waits (a token without service:read must
    // not hold a request open, nor learn when the instance changes; an unknown ID answers 404 at
    // once, as Consul's), and again once it woke: the ID may name another service by then.
    const own = () => {
      const i = store.instance(id);
      if (i === undefined || i.node !== d.node) {
        throw new HttpError(404, `unknown service ID: ${id}`);
      }
      requireRight(c, "service", i.service, "read");
      return i;
    };
    await prepareRead(c, d, {
      index: () => store.instance(id)?.modifyIndex ?? store.tableIndex("instances"),
      watch: { instance: id },
      beforeWait: own,
    });
    const i = own();
    return c.json({ ...agentService(i, d.datacenter), ContentHash: String(i.modifyIndex) });
  });

  app.put("/v1/agent/check/register", async (c) => {
    const what = "agent check register";
    const body = await readJsonObject(c.req.raw, what);
    const serviceId = optionalField(body, "ServiceID", "string", what) ?? "";
    const service = serviceId === "" ? undefined : store.instance(serviceId);
    if (serviceId !== "" && (service === undefined || service.node !== d.node)) {
      throw badRequest(`${what}: ServiceID "${serviceId}" does not exist on node ${d.node}`);
    }
    if (service !== undefined) requireRight(c, "service", service.service, "write");
    else requireRight(c, "node", d.node, "write");
    const check = checkFromConsul(body, {
      what,
      defaultId: "",
      defaultName: "",
      service: service === undefined ? null : { address: service.address, port: service.port },
      mode: "run",
    });
    // Reusing a CheckID rewrites that check: its service's right (or the node's) too.
    requireCheckTakeover(c, store, d.node, check.id);
    await proposeChecked(d, {
      type: "check.register",
      node: d.node,
      serviceId: serviceId === "" ? null : serviceId,
      check,
    });
    return c.body(null, 200);
  });

  app.put("/v1/agent/check/deregister/:id", async (c) => {
    const check = ownCheck(c, c.req.param("id"));
    await proposeChecked(d, { type: "check.deregister", node: d.node, id: check.id });
    return c.body(null, 200);
  });

  const report = async (c: Context, raw: string, status: CheckStatus, output: string) => {
    const check = ownCheck(c, raw);
    if (check.registered.kind !== "ttl") {
      throw badRequest(`CheckID "${check.id}" does not have associated TTL`);
    }
    const out = (() => {
      try {
        return rules.checkOutput(output, "Output");
      } catch (e) {
        if (e instanceof CommandError) throw badRequest(`check update: ${e.message}`);
        throw e;
      }
    })();
    // The TTL restarts first, so no expiry starts while this report is proposed.
    const expiry = d.onTtlReport(check.id);
    if (expiry !== null) await expiry;
    if (
      expiry !== null || check.output === TTL_EXPIRED_OUTPUT || check.status !== status ||
      check.output !== out
    ) {
      await proposeChecked(d, {
        type: "check.update",
        node: d.node,
        id: check.id,
        status,
        output: out,
      });
    }
  };

  for (const [verb, status] of Object.entries(REPORTS)) {
    app.put(`/v1/agent/check/${verb}/:id`, async (c) => {
      await report(c, c.req.param("id"), status, c.req.query("note") ?? "");
      return c.body(null, 200);
    });
  }

  app.put("/v1/agent/check/update/:id", async (c) => {
    const what = "agent check update";
    const body = await readJsonObject(c.req.raw, what);
    const given = optionalField(body, "Status", "string", what);
    if (given === undefined) throw badRequest(`${what}: missing Status`);
    let status: CheckStatus;
    try {
      status = rules.status(given, "Status");
    } catch (e) {
      if (e instanceof CommandError) throw badRequest(`${what}: ${e.message}`);
      throw e;
    }
    await report(
      c,
      c.req.param("id"),
      status,
      optionalField(body, "Output", "string", what) ?? "",
    );
    return c.body(null, 200);
  });
}
