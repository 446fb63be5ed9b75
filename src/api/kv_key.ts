/**
 * The KV key a `/v1/kv/…` request names and what shape of answer or delete it asks for, shared
 * by the KV routes and the ACL check of them (acl_routes.ts) so both see the same key and the
 * same shape.
 *
 * @module
 */
import type { Context } from "hono";
import { NAME_BYTES_MAX } from "../store/mod.ts";
import { decodePath } from "./deps.ts";
import { badRequest } from "./http_error.ts";

/** The key after `/v1/kv/` (percent-decoded; "" for `/v1/kv`); 400 when malformed or too long. */
export function keyOf(c: Context): string {
  const path = c.req.path;
  const raw = path.startsWith("/v1/kv/") ? path.slice("/v1/kv/".length) : "";
  const key = decodePath(raw, "kv key");
  if (key.length > NAME_BYTES_MAX) {
    throw badRequest(`kv key is ${key.length} characters, over the ${NAME_BYTES_MAX} limit`);
  }
  return key;
}

type Query = (name: string) => string | undefined;

/**
 * What a KV GET answers: `keys` (the key names under the key, `?keys`), `tree` (the entries
 * under it, `?recurse`) or `one` (the key itself). As in Consul, a parameter's presence turns it
 * on whatever its value: `?recurse=false` and `?keys=0` list too. The ACL rule and the handler
 * both decide with this one function: a list is filtered, the one key needs key:read.
 */
export function kvReadShape(query: Query): "keys" | "tree" | "one" {
  if (query("keys") !== undefined) return "keys";
  return query("recurse") !== undefined ? "tree" : "one";
}

/** Whether a KV DELETE removes the tree under the key (`?recurse`, present with any value). */
export function kvDeletesTree(query: Query): boolean {
  return query("recurse") !== undefined;
}
