/**
 * `/v1/kv/:key`: Consul's KV API. GET answers `[{LockIndex, Key, Flags, Value, Session,
 * CreateIndex, ModifyIndex}]` (Value base64, null when empty; Session only while a session holds
 * the key's lock), 404 when nothing matches; `?recurse`, `?keys` (with `?separator`), `?raw`.
 * PUT stores the raw body (`?flags`, `?cas`; `?acquire=SESSION` takes the key's lock with it,
 * `?release=SESSION` gives it up, both combine with `?cas`) and DELETE removes (`?recurse`,
 * `?cas`); both answer `true` or `false`. `?recurse` and `?keys` are on when present, whatever
 * their value (Consul's reading; `?recurse=false` lists too): kv_key.ts decides for this file and
 * the ACL rule alike.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import type { Authorizer } from "../acl/authorizer.ts";
import type { Command } from "../store/mod.ts";
import { SESSION_ID_RE, VALUE_BYTES_MAX } from "../store/mod.ts";
import { keepAllowed } from "./acl_enforce.ts";
import { kvEntry } from "./consul_shapes.ts";
import { type Deps, prepareRead, proposeChecked } from "./deps.ts";
import { keyOf, kvDeletesTree, kvReadShape } from "./kv_key.ts";
import { badRequest, readBody } from "./http_error.ts";
import { flag, uintParam } from "./query.ts";

/** Largest `?flags` (Consul's are uint64; ours must stay exact in a JS number). */
export const KV_FLAGS_MAX = Number.MAX_SAFE_INTEGER;

/** Keys under `prefix` cut after the first `separator` past it, without duplicates. */
export function foldKeys(keys: string[], prefix: string, separator: string): string[] {
  if (separator === "") return keys;
  const out: string[] = [];
  for (const k of keys) {
    const at = k.indexOf(separator, prefix.length);
    const folded = at < 0 ? k : k.slice(0, at + separator.length);
    if (out[out.length - 1] !== folded) out.push(folded);
  }
  return out;
}

/** `?acquire=` / `?release=`: a session id (400 unless a UUID), or undefined when absent. */
function sessionParam(c: Context, name: string): string | undefined {
  const v = c.req.query(name);
  if (v === undefined) return undefined;
  if (!SESSION_ID_RE.test(v)) {
    throw badRequest(`bad ?${name}=${v.slice(0, 60)}: expected a session id (a UUID)`);
  }
  return v;
}

export function kvRoutes(app: Hono, d: Deps): void {
  const { store } = d;
  const q = (c: Context) => (name: string) => c.req.query(name);

  const get = async (c: Context) => {
    const key = keyOf(c);
    // The same shape the ACL rule checked (acl_routes.ts): a list is filtered below.
    const shape = kvReadShape(q(c));
    const recurse = shape === "tree";
    const keys = shape === "keys";
    const list = shape !== "one";
    await prepareRead(
      c,
      d,
      list
        ? {
          index: () => store.tableIndex("kv"),
          watch: { prefix: key },
        }
        : {
          index: () => store.kvGet(key)?.modifyIndex ?? store.tableIndex("kv"),
          watch: { key },
        },
    );
    // The root always exists: listing it never answers 404.
    const missing = (n: number) => n === 0 && !(list && key === "");
    // A list answers only the keys the token may read (the single key was checked before).
    const readable = (a: Authorizer, k: string) => a.allows("kv", k, "read");
    if (keys) {
      const found = foldKeys(
        keepAllowed(c, store.kvKeys(key), readable),
        key,
        c.req.query("separator") ?? "",
      );
      return missing(found.length) ? c.body(null, 404) : c.json(found);
    }
    const entries = recurse
      ? keepAllowed(c, store.kvList(key), (a, e) => readable(a, e.key))
      : [store.kvGet(key)].filter((e) => e !== undefined);
    if (missing(entries.length)) return c.body(null, 404);
    if (flag(q(c), "raw")) {
      const value = entries[0]?.value ?? new Uint8Array(0);
      return c.body(value as Uint8Array<ArrayBuffer>, 200, {
        "Content-Type": "application/octet-stream",
      });
    }
    return c.json(entries.map((e) => kvEntry(e, store.sessions.holder(e.key))));
  };
  app.get("/v1/kv", get);
  app.get("/v1/kv/*", get);

  app.put("/v1/kv/*", async (c) => {
    const key = keyOf(c);
    if (key === "") throw badRequest("missing key name: PUT /v1/kv/KEY");
    const flags = uintParam(q(c), "flags", KV_FLAGS_MAX) ?? 0;
    const cas = uintParam(q(c), "cas");
    const acquire = sessionParam(c, "acquire");
    const release = sessionParam(c, "release");
    if (acquire !== undefined && release !== undefined) {
      throw badRequest("?acquire and ?release cannot be combined");
    }
    const value = await readBody(c.req.raw, VALUE_BYTES_MAX);
    const entry = { key, value, flags, ...(cas === undefined ? {} : { cas }) };
    const cmd: Command = acquire !== undefined
      ? { type: "kv.lock", ...entry, session: acquire, nowMs: d.now() }
      : release !== undefined
      ? { type: "kv.unlock", ...entry, session: release }
      : { type: "kv.put", ...entry };
    const p = await proposeChecked(d, cmd);
    return c.json(p.result.ok);
  });

  const del = async (c: Context) => {
    const key = keyOf(c);
    const recurse = kvDeletesTree(q(c));
    const cas = uintParam(q(c), "cas");
    if (key === "" && !recurse) throw badRequest("missing key name: DELETE /v1/kv/KEY");
    if (recurse && cas !== undefined) throw badRequest("?cas and ?recurse cannot be combined");
    const p = await proposeChecked(d, {
      type: "kv.delete",
      key,
      ...(recurse ? { recurse: true } : {}),
      ...(cas === undefined ? {} : { cas }),
    });
    return c.json(p.result.ok);
  };
  app.delete("/v1/kv", del);
  app.delete("/v1/kv/*", del);
}
