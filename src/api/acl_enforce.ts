/**
 * ACL enforcement on the API: the middleware that turns the request's token into an Authorizer
 * (`c.get("authz")`) and checks the right its route needs (acl_routes.ts) before the handler
 * runs, and the helpers handlers use for the rights they can only check after reading the body
 * or looking an id up (`requireRight`), and to filter lists (`keepAllowed`).
 *
 * The token comes, as in Consul, from `?token=`, else `X-Consul-Token`, else `Authorization:
 * Bearer`; none (or an empty one) is the anonymous token, whose rights are `--acl-default`'s plus
 * its policies. Refusals answer 403 in Consul's words: an unknown token `ACL not found`, a token
 * without the right `Permission denied: token with AccessorID '…' lacks permission 'key:write'
 * on "foo"`. Lists answer what the token may read and say `X-Consul-Results-Filtered-By-ACLs:
 * true` when they left something out (not to the anonymous token, as Consul does).
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { Access, Authorizer, Resource, TokenLookup } from "../acl/mod.ts";
import type { Store } from "../store/mod.ts";
import { needOf, ruleOf } from "./acl_routes.ts";
import { HttpError } from "./http_error.ts";
import { keyOf } from "./kv_key.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** The rights of the request's token (set by the ACL middleware on every checked route). */
    authz: Authorizer;
    /** The AccessorID of the request's token (the anonymous token's when none was given). */
    accessorId: string;
    /** Whether the request presented a token (the filtered-results header is only for them). */
    tokenPresented: boolean;
  }
}

/** src/acl's resolveToken bound to the store and `--acl-default`. */
export type ResolveToken = (secret: string | undefined) => TokenLookup;

/** Longest token accepted; a longer one is not looked up (no token is that long). */
export const TOKEN_CHARS_MAX = 256;

/** Consul's names for the resources in messages (`key`, not `kv`). */
const CONSUL_NAME: Record<Resource, string> = {
  kv: "key",
  service: "service",
  node: "node",
  session: "session",
  agent: "agent",
  operator: "operator",
  acl: "acl",
  none: "none",
};

/** The header Consul sets on a list that left out what the token may not read. */
export const FILTERED_HEADER = "X-Consul-Results-Filtered-By-ACLs";

/**
 * The token a request presents, Consul's order: `?token=`, `X-Consul-Token`, then
 * `Authorization: Bearer …`; undefined when none (or only empty ones) is given.
 */
export function presentedToken(c: Context): string | undefined {
  const query = c.req.query("token");
  if (query !== undefined && query !== "") return query;
  const header = c.req.header("X-Consul-Token");
  if (header !== undefined && header.trim() !== "") return header.trim();
  const auth = c.req.header("Authorization");
  const m = auth === undefined ? null : /^\s*Bearer\s+(\S.*)$/is.exec(auth);
  const bearer = m?.[1]?.trim();
  return bearer === undefined || bearer === "" ? undefined : bearer;
}

/** The 403 for a token that lacks `resource:access` (on `segment`, for named resources). */
export function permissionDenied(
  accessorId: string,
  need: { resource: Resource; access: Access; segment: string | null },
): HttpError {
  const on = need.segment === null ? "" : ` on ${JSON.stringify(need.segment)}`;
  return new HttpError(
    403,
    `Permission denied: token with AccessorID '${accessorId}' lacks permission ` +
      `'${CONSUL_NAME[need.resource]}:${need.access}'${on}`,
  );
}

/** The request's Authorizer; throws when the ACL middleware did not run (a wiring error). */
export function authzOf(c: Context): Authorizer {
  const a = c.get("authz");
  if (a === undefined) throw new Error(`acl: no authorizer for ${c.req.method} ${c.req.path}`);
  return a;
}

/** Throws the 403 unless the request's token has `access` on `segment` of `resource`. */
export function requireRight(
  c: Context,
  resource: Resource,
  segment: string,
  access: Access,
): void {
  if (authzOf(c).allows(resource, segment, access)) return;
  const unnamed = resource === "operator" || resource === "acl";
  throw permissionDenied(c.get("accessorId"), {
    resource,
    access,
    segment: unnamed ? null : segment,
  });
}

/**
 * Throws the 403 unless the request's token may write every segment under `prefix` of
 * `resource` by its rules (Consul's KeyWritePrefix: recursive deletes), whatever exists now.
 */
export function requirePrefixWrite(c: Context, resource: Resource, prefix: string): void {
  if (authzOf(c).allowsPrefixWrite(resource, prefix)) return;
  throw permissionDenied(c.get("accessorId"), { resource, access: "write", segment: prefix });
}

/**
 * The items the request's token may see (`keep` decides with its Authorizer); sets Consul's
 * filtered-results header when some were left out and the request presented a token.
 */
export function keepAllowed<T>(
  c: Context,
  items: readonly T[],
  keep: (a: Authorizer, item: T) => boolean,
): T[] {
  const a = authzOf(c);
  const kept = items.filter((i) => keep(a, i));
  if (kept.length < items.length) markFiltered(c);
  return kept;
}

/** Sets the filtered-results header (only for a request that presented a token). */
export function markFiltered(c: Context): void {
  if (c.get("tokenPresented")) c.header(FILTERED_HEADER, "true");
}

/** The route a request is answered by: the first matched route that is not a middleware. */
function handlerRoute(c: Context): { method: string; path: string } | undefined {
  const method = c.req.method === "HEAD" ? "GET" : c.req.method;
  return matchedRoutes(c).find((r) => r.method === method);
}

export interface AclMiddlewareOptions {
  resolve: ResolveToken;
  /** members: none means this agent belongs to no cluster yet. */
  store: Pick<Store, "members">;
  /** This agent's node name (the `agent` segment). */
  node: string;
}

/**
 * Resolves the request's token and checks its route's `right` (acl_routes.ts). Open routes and
 * requests no route answers (404, 405) pass without a look at the token. A route of the app
 * without a row is refused (fail closed; acl_routes_test.ts keeps that from happening).
 */
export function aclMiddleware(opts: AclMiddlewareOptions): MiddlewareHandler {
  return async (c, next) => {
    const route = handlerRoute(c);
    if (route === undefined) return await next();
    const rule = ruleOf(route.method, route.path);
    if (rule === undefined) {
      throw new HttpError(
        403,
        `Permission denied: ${route.method} ${route.path} is not classified`,
      );
    }
    const need = needOf(rule, (n) => c.req.query(n));
    if (need.kind === "open") return await next();
    if (need.kind === "right" && need.openUnjoined && opts.store.members().length === 0) {
      return await next();
    }
    const secret = presentedToken(c);
    const found = secret !== undefined && secret.length > TOKEN_CHARS_MAX
      ? { error: "not found" as const }
      : opts.resolve(secret);
    if ("error" in found) throw new HttpError(403, "ACL not found");
    c.set("authz", found.authz);
    c.set("accessorId", found.accessorId);
    c.set("tokenPresented", secret !== undefined);
    if (need.kind === "right") {
      switch (need.segment) {
        case "none":
          requireRight(c, need.resource, "", need.access);
          break;
        case "agent":
          requireRight(c, need.resource, opts.node, need.access);
          break;
        case "key":
          requireRight(c, "kv", keyOf(c), need.access);
          break;
        case "key-tree":
          requirePrefixWrite(c, "kv", keyOf(c));
          break;
          // session, service-id, check-id: the handler checks once it has looked the id up.
      }
    }
    await next();
  };
}
