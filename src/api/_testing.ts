/**
 * Test fixtures: an in-memory store, a LocalCluster and the app over them.
 *
 * @module
 */
import type { Hono } from "hono";
import { LocalCluster } from "../cluster/testing.ts";
import { hashSecret } from "../acl/mod.ts";
import { GLOBAL_MANAGEMENT_ID, Store } from "../store/mod.ts";
import { type ApiOptions, createApp } from "./app.ts";

export { instanceSpec } from "../../test/fixtures.ts";

export interface Fixture {
  store: Store;
  cluster: LocalCluster;
  app: Hono;
  abort: AbortController;
  close(): void;
}

/** The ACL default of fixtures: allow (tests of other features); ACL tests pass "deny". */
export function fixture(over: Partial<ApiOptions> = {}): Fixture {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" });
  const abort = new AbortController();
  const app = createApp({
    store,
    cluster,
    node: "n1",
    advertise: "10.0.0.1",
    version: "0.0.0-test",
    aclDefault: "allow",
    signal: abort.signal,
    random: () => 0,
    ...over,
  });
  return {
    store,
    cluster,
    app,
    abort,
    close() {
      abort.abort();
      store.close();
    },
  };
}

export function put(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "PUT",
    headers,
    body: typeof body === "string" || body instanceof Uint8Array
      ? body as BodyInit
      : JSON.stringify(body),
  };
}

let tokens = 0;

/**
 * Adds an ACL token with secret `secret` to the store: a management token, or one with a policy
 * of `rules` (Consul HCL), or none with `null`. Returns its AccessorID.
 */
export function addToken(
  store: Store,
  secret: string,
  rules: string | "management" | null,
): string {
  const n = ++tokens;
  const hex = n.toString(16).padStart(12, "0");
  const accessorId = `aaaaaaaa-aaaa-4aaa-8aaa-${hex}`;
  const policyId = `bbbbbbbb-bbbb-4bbb-8bbb-${hex}`;
  const apply = (command: Parameters<Store["apply"]>[1]) => {
    const r = store.apply(store.appliedIndex() + 1, command);
    if (!r.ok) throw new Error(`addToken: ${r.error}`);
  };
  if (rules !== null && rules !== "management") {
    apply({
      type: "acl.policy.set",
      policy: { id: policyId, name: `p${n}`, description: "", rules, datacenters: [] },
    });
  }
  apply({
    type: "acl.token.set",
    token: {
      accessorId,
      secretHash: hashSecret(secret),
      description: "",
      policies: rules === null
        ? []
        : [{ id: rules === "management" ? GLOBAL_MANAGEMENT_ID : policyId }],
      local: false,
      createTimeMs: 0,
    },
  });
  return accessorId;
}
