/**
 * The KV key a `/v1/kv/…` request names, shared by the KV routes and the ACL check of them so
 * both see the same key.
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
