/**
 * `/v1/acl/*`: Consul's ACL policy and token endpoints, with Consul's field names.
 *
 * - `PUT /v1/acl/policy` (body: Name, Description, Rules, Datacenters) creates a policy;
 *   `GET|PUT|DELETE /v1/acl/policy/:id`, `GET /v1/acl/policy/name/:name`, `GET
 *   /v1/acl/policies` (without Rules, as Consul lists them).
 * - `PUT /v1/acl/token` (body: Description, Policies [{ID}|{Name}], Local, optionally AccessorID
 *   and SecretID as UUIDs) creates a token; its SecretID is in this answer only, never in a later
 *   read (the store keeps only its sha256). `GET|PUT|DELETE /v1/acl/token/:accessor`, `GET
 *   /v1/acl/token/self` (the request's token), `GET /v1/acl/tokens` (`?policy=ID` filters),
 *   `PUT /v1/acl/token/:accessor/clone` (a new token with the same policies; body: Description).
 * - `PUT /v1/acl/bootstrap`: Consul's one-time bootstrap, a management token for a cluster that
 *   never had one (made before ACLs); 403 "ACL bootstrap no longer allowed" once the cluster is
 *   bootstrapped (the store's marker, acl_tables.ts), also after its management tokens are gone.
 *   An update that takes global-management off the request's own token is refused (400).
 *
 * Every one needs `acl:read` or `acl:write`, which only a management token has (the ACL
 * middleware checks it, acl_routes.ts); `token/self` needs a known token, `bootstrap` none. Reads block on
 * `?index` like the other reads.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import {
  ACL_BOOTSTRAP_DONE,
  ACL_DESCRIPTION_CHARS_MAX,
  ACL_UUID_RE,
  type AclPolicy,
  type AclPolicyLink,
  aclPolicyName,
  type AclToken,
  aclUuid,
  ANONYMOUS_ACCESSOR,
  GLOBAL_MANAGEMENT_ID,
  GLOBAL_MANAGEMENT_NAME,
  type Store,
} from "../store/mod.ts";
import { hashSecret, parseRules, RulesError } from "../acl/mod.ts";
import { decodePath, type Deps, prepareRead, proposeChecked } from "./deps.ts";
import { lookup, optionalField, ruled } from "./fields.ts";
import { badRequest, HttpError, readJsonObject } from "./http_error.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** The AccessorID of the request's token (set by the ACL middleware). */
    accessorId: string;
  }
}

/** A policy in Consul's shape; lists leave Rules out. */
export function aclPolicyEntry(p: AclPolicy, withRules = true) {
  return {
    ID: p.id,
    Name: p.name,
    Description: p.description,
    ...(withRules ? { Rules: p.rules } : {}),
    Datacenters: p.datacenters.length === 0 ? null : p.datacenters,
    CreateIndex: p.createIndex,
    ModifyIndex: p.modifyIndex,
  };
}

/** A token in Consul's shape, without its secret (the create answer adds SecretID). */
export function aclTokenEntry(store: Store, t: AclToken) {
  return {
    AccessorID: t.accessorId,
    Description: t.description,
    Policies: t.policyIds.flatMap((id) => {
      const p = store.aclPolicy(id);
      return p === undefined ? [] : [{ ID: p.id, Name: p.name }];
    }),
    Local: t.local,
    CreateTime: new Date(t.createTimeMs).toISOString(),
    CreateIndex: t.createIndex,
    ModifyIndex: t.modifyIndex,
  };
}

/** Consul token fields berth does not have: refused when given non-empty, so nothing is lost. */
const UNSUPPORTED_TOKEN_FIELDS = [
  "Roles",
  "ServiceIdentities",
  "NodeIdentities",
  "TemplatedPolicies",
  "ExpirationTime",
  "ExpirationTTL",
];

function notFound(): HttpError {
  return new HttpError(404, "ACL not found");
}

/** What a write just made, read back (404 when a later entry already removed it). */
function present<T>(x: T | undefined): T {
  if (x === undefined) throw notFound();
  return x;
}

function pathUuid(c: Context, name: string, what: string): string {
  const raw = decodePath(c.req.param(name) ?? "", what);
  return ruled(`acl: bad ${what}`, () => aclUuid(raw, what));
}

/** A SecretID a client chose: a UUID, kept as written (the hash is of the text presented later),
 * and never echoed back in an error. */
function secretId(given: string, what: string): string {
  if (!ACL_UUID_RE.test(given)) throw badRequest(`${what}: SecretID must be a UUID`);
  return given;
}

function description(body: Record<string, unknown>, what: string): string {
  const d = optionalField(body, "Description", "string", what) ?? "";
  if (d.length > ACL_DESCRIPTION_CHARS_MAX) {
    throw badRequest(`${what}: Description is over ${ACL_DESCRIPTION_CHARS_MAX} characters`);
  }
  return d;
}

/**
 * The policy a PUT body describes, with `id` (new or the one updated). Its Datacenters, when
 * given, must name `datacenter` (berth's cluster is one datacenter: a policy for others only
 * would be stored and never apply, so it is refused).
 */
function policyFromBody(body: Record<string, unknown>, id: string, datacenter: string) {
  const what = "acl policy";
  const given = optionalField(body, "ID", "string", what);
  if (given !== undefined && given !== "" && given.toLowerCase() !== id) {
    throw badRequest(`${what}: ID ${given.slice(0, 40)} differs from the policy's id ${id}`);
  }
  const name = optionalField(body, "Name", "string", what);
  if (name === undefined || name === "") throw badRequest(`${what}: missing Name`);
  const rules = optionalField(body, "Rules", "string", what) ?? "";
  try {
    parseRules(rules);
  } catch (e) {
    // The parser's message already says `rules: line L, column C: …`.
    if (e instanceof RulesError) throw badRequest(e.message);
    throw e;
  }
  const datacenters = optionalField(body, "Datacenters", "strings", what) ?? [];
  if (datacenters.length > 0 && !datacenters.includes(datacenter)) {
    throw badRequest(
      `${what}: Datacenters ${JSON.stringify(datacenters).slice(0, 80)} does not include this ` +
        `cluster's datacenter "${datacenter}" (leave Datacenters empty: berth has one datacenter)`,
    );
  }
  return {
    id,
    name: ruled(what, () => aclPolicyName(name, "Name")),
    description: description(body, what),
    rules,
    datacenters,
  };
}

function policyLinks(body: Record<string, unknown>, what: string): AclPolicyLink[] {
  const list = optionalField(body, "Policies", "array", what) ?? [];
  return list.map((l, i) => {
    if (typeof l !== "object" || l === null || Array.isArray(l)) {
      throw badRequest(`${what}: Policies[${i}] must be an object with ID or Name`);
    }
    const o = l as Record<string, unknown>;
    const id = optionalField(o, "ID", "string", `${what}: Policies[${i}]`);
    if (id !== undefined && id !== "") return { id };
    const name = optionalField(o, "Name", "string", `${what}: Policies[${i}]`);
    if (name !== undefined && name !== "") return { name };
    throw badRequest(`${what}: Policies[${i}] needs an ID or a Name`);
  });
}

function refuseUnsupported(body: Record<string, unknown>, what: string): void {
  for (const f of UNSUPPORTED_TOKEN_FIELDS) {
    const v = lookup(body, f);
    const empty = v === undefined || v === null || v === "" || v === 0 ||
      (Array.isArray(v) && v.length === 0);
    if (!empty) throw badRequest(`${what}: ${f} is not supported by berth`);
  }
}

export function aclEndpoints(app: Hono, d: Deps): void {
  const { store } = d;
  const aclRead = {
    index: () => store.tableIndex("acl"),
    watch: { table: "acl" } as const,
  };

  // ---- policies ----

  app.put("/v1/acl/policy", async (c) => {
    const body = await readJsonObject(c.req.raw, "acl policy");
    const policy = policyFromBody(body, crypto.randomUUID(), d.datacenter);
    await proposeChecked(d, { type: "acl.policy.set", policy });
    return c.json(aclPolicyEntry(present(store.aclPolicy(policy.id))));
  });

  app.get("/v1/acl/policy/name/:name", async (c) => {
    const name = decodePath(c.req.param("name"), "policy name");
    await prepareRead(c, d, aclRead);
    const p = store.aclPolicyByName(name);
    if (p === undefined) throw notFound();
    return c.json(aclPolicyEntry(p));
  });

  app.get("/v1/acl/policy/:id", async (c) => {
    const id = pathUuid(c, "id", "policy id");
    await prepareRead(c, d, aclRead);
    const p = store.aclPolicy(id);
    if (p === undefined) throw notFound();
    return c.json(aclPolicyEntry(p));
  });

  app.put("/v1/acl/policy/:id", async (c) => {
    const id = pathUuid(c, "id", "policy id");
    if (store.aclPolicy(id) === undefined) throw notFound();
    const policy = policyFromBody(await readJsonObject(c.req.raw, "acl policy"), id, d.datacenter);
    await proposeChecked(d, { type: "acl.policy.set", policy });
    return c.json(aclPolicyEntry(present(store.aclPolicy(id))));
  });

  app.delete("/v1/acl/policy/:id", async (c) => {
    const id = pathUuid(c, "id", "policy id");
    if (store.aclPolicy(id) === undefined) throw notFound();
    await proposeChecked(d, { type: "acl.policy.delete", id });
    return c.json(true);
  });

  app.get("/v1/acl/policies", async (c) => {
    await prepareRead(c, d, aclRead);
    return c.json(store.aclPolicies().map((p) => aclPolicyEntry(p, false)));
  });

  // ---- tokens ----

  /** Proposes a new token; Consul's create answer, the only one that carries the SecretID. */
  const createToken = async (t: {
    accessorId: string;
    secret: string;
    description: string;
    policies: AclPolicyLink[];
    local: boolean;
  }, type: "acl.token.set" | "acl.bootstrap" = "acl.token.set") => {
    await proposeChecked(d, {
      type,
      token: {
        accessorId: t.accessorId,
        secretHash: hashSecret(t.secret),
        description: t.description,
        policies: t.policies,
        local: t.local,
        createTimeMs: d.now(),
      },
    });
    const { AccessorID, ...rest } = aclTokenEntry(store, present(store.aclToken(t.accessorId)));
    return { AccessorID, SecretID: t.secret, ...rest };
  };

  app.put("/v1/acl/token", async (c) => {
    const what = "acl token";
    const body = await readJsonObject(c.req.raw, what);
    refuseUnsupported(body, what);
    const givenAccessor = optionalField(body, "AccessorID", "string", what);
    const accessorId = givenAccessor === undefined || givenAccessor === ""
      ? crypto.randomUUID()
      : ruled(what, () => aclUuid(givenAccessor, "AccessorID"));
    if (store.aclToken(accessorId) !== undefined) {
      throw badRequest(`${what}: a token with AccessorID ${accessorId} already exists`);
    }
    const givenSecret = optionalField(body, "SecretID", "string", what);
    return c.json(
      await createToken({
        accessorId,
        secret: givenSecret === undefined || givenSecret === ""
          ? crypto.randomUUID()
          : secretId(givenSecret, what),
        description: description(body, what),
        policies: policyLinks(body, what),
        local: optionalField(body, "Local", "boolean", what) ?? false,
      }),
    );
  });

  app.put("/v1/acl/token/:accessor/clone", async (c) => {
    const from = store.aclToken(pathUuid(c, "accessor", "AccessorID"));
    if (from === undefined) throw notFound();
    const body = c.req.raw.body === null ? {} : await readJsonObject(c.req.raw, "acl token clone");
    const desc = lookup(body, "Description") === undefined
      ? from.description
      : description(body, "acl token clone");
    return c.json(
      await createToken({
        accessorId: crypto.randomUUID(),
        secret: crypto.randomUUID(),
        description: desc,
        policies: from.policyIds.map((id) => ({ id })),
        local: from.local,
      }),
    );
  });

  // Consul's one-time bootstrap: a management token, only for a cluster that never had one (made
  // before ACLs; `--bootstrap` makes one with the cluster). No token needed.
  app.put("/v1/acl/bootstrap", async (c) => {
    try {
      return c.json(
        await createToken({
          accessorId: crypto.randomUUID(),
          secret: crypto.randomUUID(),
          description: "Bootstrap Token (Global Management)",
          policies: [],
          local: false,
        }, "acl.bootstrap"),
      );
    } catch (e) {
      if (e instanceof HttpError && e.message === ACL_BOOTSTRAP_DONE) {
        throw new HttpError(403, `Permission denied: "${ACL_BOOTSTRAP_DONE}"`);
      }
      throw e;
    }
  });

  app.get("/v1/acl/token/self", async (c) => {
    await prepareRead(c, d, aclRead);
    const t = store.aclToken(c.get("accessorId") ?? ANONYMOUS_ACCESSOR);
    if (t === undefined) throw new HttpError(403, "ACL not found");
    return c.json(aclTokenEntry(store, t));
  });

  app.get("/v1/acl/token/:accessor", async (c) => {
    const accessor = pathUuid(c, "accessor", "AccessorID");
    await prepareRead(c, d, aclRead);
    const t = store.aclToken(accessor);
    if (t === undefined) throw notFound();
    return c.json(aclTokenEntry(store, t));
  });

  app.put("/v1/acl/token/:accessor", async (c) => {
    const what = "acl token";
    const accessorId = pathUuid(c, "accessor", "AccessorID");
    const before = store.aclToken(accessorId);
    if (before === undefined) throw notFound();
    const body = await readJsonObject(c.req.raw, what);
    refuseUnsupported(body, what);
    const givenAccessor = optionalField(body, "AccessorID", "string", what);
    if (
      givenAccessor !== undefined && givenAccessor !== "" &&
      givenAccessor.toLowerCase() !== accessorId
    ) {
      throw badRequest(`${what}: AccessorID in the body differs from the one in the path`);
    }
    const local = optionalField(body, "Local", "boolean", what) ?? before.local;
    if (local !== before.local) throw badRequest(`${what}: cannot toggle local mode of a token`);
    const secret = optionalField(body, "SecretID", "string", what);
    const policies = policyLinks(body, what);
    const management = (l: AclPolicyLink) =>
      l.id?.toLowerCase() === GLOBAL_MANAGEMENT_ID || l.name === GLOBAL_MANAGEMENT_NAME;
    if (
      accessorId === c.get("accessorId") && before.policyIds.includes(GLOBAL_MANAGEMENT_ID) &&
      !policies.some(management)
    ) {
      // As a token cannot delete itself: a caller cannot lock itself out of managing ACLs.
      throw badRequest(
        `${what}: removing ${GLOBAL_MANAGEMENT_NAME} from the request's own token is not permitted`,
      );
    }
    await proposeChecked(d, {
      type: "acl.token.set",
      token: {
        accessorId,
        // Given: the store refuses it unless it is the token's own (a secret never changes).
        ...(secret === undefined || secret === "" ? {} : { secretHash: hashSecret(secret) }),
        description: description(body, what),
        policies,
        local,
        createTimeMs: before.createTimeMs,
      },
    });
    return c.json(aclTokenEntry(store, present(store.aclToken(accessorId))));
  });

  app.delete("/v1/acl/token/:accessor", async (c) => {
    const accessorId = pathUuid(c, "accessor", "AccessorID");
    if (store.aclToken(accessorId) === undefined) throw notFound();
    if (accessorId === c.get("accessorId")) {
      throw badRequest("Deletion of the request's authorization token is not permitted");
    }
    await proposeChecked(d, { type: "acl.token.delete", accessorId });
    return c.json(true);
  });

  app.get("/v1/acl/tokens", async (c) => {
    const policy = c.req.query("policy");
    await prepareRead(c, d, aclRead);
    const tokens = store.aclTokens().filter((t) =>
      policy === undefined || policy === "" || t.policyIds.includes(policy.toLowerCase())
    );
    return c.json(tokens.map((t) => aclTokenEntry(store, t)));
  });
}
