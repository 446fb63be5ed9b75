/**
 * `/v1/session/*`: Consul's session API. `PUT /v1/session/create` (body: Name, Node, Checks,
 * NodeChecks, ServiceChecks, LockDelay, Behavior, TTL; answers `{"ID"}`), `PUT
 * /v1/session/destroy/:id` (`true`), `PUT /v1/session/renew/:id` (`[session]`, 404 when it is
 * gone), `GET /v1/session/info/:id` (`[session]` or `[]`), `/v1/session/node/:node`,
 * `/v1/session/list`; the reads block on `?index` and report `X-Consul-Index`.
 *
 * The session's id is made here (the proposer), the store keeps it (store/sessions.ts), the
 * leader keeps its TTL (cluster/_session_timers.ts).
 *
 * @module
 */
import type { Context, Hono } from "hono";
import type { Authorizer } from "../acl/authorizer.ts";
import { parseGoDuration } from "../lib/duration.ts";
import {
  LOCK_DELAY_DEFAULT_MS,
  LOCK_DELAY_MAX_MS,
  SERF_CHECK_ID,
  type Session,
  SESSION_ID_RE,
  SESSION_TTL_MAX_MS,
  SESSION_TTL_MIN_MS,
  type SessionSpec,
} from "../store/mod.ts";
import { barrier, decodePath, type Deps, prepareRead, proposeChecked } from "./deps.ts";
import { badRequest, HttpError, readBody } from "./http_error.ts";
import { keepAllowed, requireRight } from "./acl_enforce.ts";

/** Largest session/create body. */
const SESSION_BODY_BYTES_MAX = 64 * 1024;
/** Go's nanoseconds per millisecond (Consul's LockDelay is a Go duration in JSON). */
const NS_PER_MS = 1_000_000;

/** A session in Consul's JSON shape. */
export function sessionEntry(s: Session) {
  return {
    ID: s.id,
    Name: s.name,
    Node: s.node,
    LockDelay: s.lockDelayMs * NS_PER_MS,
    Behavior: s.behavior,
    TTL: s.ttl,
    Checks: [...s.nodeChecks, ...s.serviceChecks],
    NodeChecks: s.nodeChecks,
    ServiceChecks: s.serviceChecks.length === 0
      ? null
      : s.serviceChecks.map((id) => ({ ID: id, Namespace: "" })),
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  };
}

/** The session id in a path: 400 unless it is a UUID. */
function idParam(c: Context): string {
  const id = decodePath(c.req.param("id") ?? "", "session id");
  if (!SESSION_ID_RE.test(id)) {
    throw badRequest(`bad session id ${JSON.stringify(id.slice(0, 60))}: expected a UUID`);
  }
  return id;
}

/** A body field by name, any case (Consul's decoder ignores case). */
function field(body: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(body).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : body[key];
}

function stringList(v: unknown, what: string): string[] {
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw badRequest(`session: ${what} must be a list of check ids`);
  }
  return v as string[];
}

/**
 * LockDelay as Consul reads it: a Go duration string, or a number of nanoseconds; either below
 * 1000 counts as seconds (clients send `15` meaning 15 s).
 */
export function lockDelayMs(v: unknown): number {
  if (v === undefined || v === null) return LOCK_DELAY_DEFAULT_MS;
  let ms: number;
  if (typeof v === "string") {
    try {
      ms = parseGoDuration(v);
    } catch (e) {
      throw badRequest(`session: bad LockDelay ${JSON.stringify(v.slice(0, 40))}: ${e}`);
    }
    if (ms * NS_PER_MS < 1000) ms *= 1000;
  } else if (typeof v === "number" && Number.isFinite(v) && v >= 0) {
    ms = v < 1000 ? v * 1000 : Math.round(v / NS_PER_MS);
  } else {
    throw badRequest('session: LockDelay must be a duration like "15s" or nanoseconds');
  }
  if (ms > LOCK_DELAY_MAX_MS) {
    throw badRequest(`session: LockDelay ${v} is over the ${LOCK_DELAY_MAX_MS / 1000}s maximum`);
  }
  return ms;
}

function ttl(v: unknown): { ttl: string; ttlMs: number } {
  if (v === undefined || v === null || v === "") return { ttl: "", ttlMs: 0 };
  if (typeof v !== "string") throw badRequest('session: TTL must be a duration like "15s"');
  let ms: number;
  try {
    ms = parseGoDuration(v);
  } catch (e) {
    throw badRequest(`session: Session TTL '${v.slice(0, 40)}' invalid: ${e}`);
  }
  if (ms === 0) return { ttl: "", ttlMs: 0 };
  if (ms < SESSION_TTL_MIN_MS || ms > SESSION_TTL_MAX_MS) {
    throw badRequest(
      `session: Invalid Session TTL '${v.slice(0, 40)}', must be between ` +
        `${SESSION_TTL_MIN_MS / 1000}s and ${SESSION_TTL_MAX_MS / 3_600_000}h`,
    );
  }
  return { ttl: v, ttlMs: ms };
}

/** The session a create body asks for (Consul's defaults for what it leaves out). */
export function sessionFromBody(body: Record<string, unknown>, node: string): SessionSpec {
  const behavior = field(body, "Behavior") ?? "release";
  if (behavior !== "release" && behavior !== "delete" && behavior !== "") {
    throw badRequest(
      `session: Invalid Behavior setting '${String(behavior).slice(0, 40)}' (release|delete)`,
    );
  }
  const name = field(body, "Name") ?? "";
  if (typeof name !== "string") throw badRequest("session: Name must be a string");
  const n = field(body, "Node") ?? node;
  if (typeof n !== "string" || n === "") throw badRequest("session: Node must be a node name");
  const checks = field(body, "Checks");
  const nodeChecksField = field(body, "NodeChecks");
  const serviceChecksField = field(body, "ServiceChecks");
  const nodeChecks = stringList(nodeChecksField, "NodeChecks");
  const serviceChecks: string[] = [];
  if (serviceChecksField !== undefined && serviceChecksField !== null) {
    if (!Array.isArray(serviceChecksField)) {
      throw badRequest("session: ServiceChecks must be a list of {ID, Namespace}");
    }
    for (const sc of serviceChecksField) {
      const id = typeof sc === "object" && sc !== null ? field(sc, "ID") : undefined;
      if (typeof id !== "string" || id === "") {
        throw badRequest("session: each ServiceChecks entry needs an ID");
      }
      serviceChecks.push(id);
    }
  }
  // The deprecated Checks list: check ids of the node (whether node or service checks).
  for (const id of stringList(checks, "Checks")) if (!nodeChecks.includes(id)) nodeChecks.push(id);
  // null is absent (as in Consul): only a list given replaces the default serfHealth.
  const given = [checks, nodeChecksField, serviceChecksField].some((v) =>
    v !== undefined && v !== null
  );
  return {
    id: crypto.randomUUID(),
    name,
    node: n,
    nodeChecks: given ? nodeChecks : [SERF_CHECK_ID],
    serviceChecks,
    lockDelayMs: lockDelayMs(field(body, "LockDelay")),
    behavior: behavior === "" ? "release" : behavior,
    ...ttl(field(body, "TTL")),
  };
}

async function createBody(req: Request): Promise<Record<string, unknown>> {
  const bytes = await readBody(req, SESSION_BODY_BYTES_MAX);
  if (bytes.byteLength === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw badRequest(`session: Request decode failed: ${(e as Error).message}`);
  }
  if (v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) {
    throw badRequest("session: Request decode failed: body must be a JSON object");
  }
  return v as Record<string, unknown>;
}

export function sessionRoutes(app: Hono, d: Deps): void {
  const { store } = d;
  const readable = (a: Authorizer, s: Session) => a.allows("session", s.node, "read");
  /**
   * session:write on the node of the session `id` names. One this replica does not have yet is
   * looked up again after the read barrier; still none: there is nothing to check (404 or a no-op).
   */
  const requireWrite = async (c: Context, id: string) => {
    let s = store.sessions.get(id);
    if (s === undefined) {
      await barrier(d.cluster);
      s = store.sessions.get(id);
    }
    if (s !== undefined) requireRight(c, "session", s.node, "write");
  };
  const sessionsRead = {
    index: () => store.tableIndex("sessions"),
    watch: { table: "sessions" } as const,
  };

  app.put("/v1/session/create", async (c) => {
    const spec = sessionFromBody(await createBody(c.req.raw), d.node);
    requireRight(c, "session", spec.node, "write");
    await proposeChecked(d, { type: "session.create", session: spec });
    return c.json({ ID: spec.id });
  });

  app.put("/v1/session/destroy/:id", async (c) => {
    const id = idParam(c);
    await requireWrite(c, id);
    await proposeChecked(d, { type: "session.destroy", id, nowMs: d.now() });
    return c.json(true);
  });

  app.put("/v1/session/renew/:id", async (c) => {
    const id = idParam(c);
    await requireWrite(c, id);
    const s = await d.cluster.renewSession(id);
    if (s === undefined) throw new HttpError(404, `Session id '${id}' not found`);
    return c.json([sessionEntry(s)]);
  });

  app.get("/v1/session/info/:id", async (c) => {
    const id = idParam(c);
    await prepareRead(c, d, sessionsRead);
    const s = store.sessions.get(id);
    return c.json(keepAllowed(c, s === undefined ? [] : [s], readable).map(sessionEntry));
  });

  app.get("/v1/session/node/:node", async (c) => {
    const node = decodePath(c.req.param("node"), "node name");
    await prepareRead(c, d, sessionsRead);
    return c.json(keepAllowed(c, store.sessions.ofNode(node), readable).map(sessionEntry));
  });

  app.get("/v1/session/list", async (c) => {
    await prepareRead(c, d, sessionsRead);
    return c.json(keepAllowed(c, store.sessions.list(), readable).map(sessionEntry));
  });
}
