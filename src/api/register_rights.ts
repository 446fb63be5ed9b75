/**
 * The rights a registration needs for what it overwrites, beyond those on what it names (as
 * Consul's vetServiceRegister, vetRegisterWithACL and vetCheckRegister): a registration that
 * reuses an instance's ID rewrites that instance, so it needs service:write on the instance's
 * current service too (and node:write on its current node when it moves it to another node); one
 * that reuses a CheckID of the node rewrites that check, so it needs service:write on the check's
 * service, or node:write on the node for a node-level check. Without these a token with
 * `service "web" write` could take over another service's instances or checks by their IDs.
 *
 * @module
 */
import type { Context } from "hono";
import { checkOnNode, type Instance, type Store } from "../store/mod.ts";
import { requireRight } from "./acl_enforce.ts";

type Reader = Pick<Store, "instance" | "node" | "instancesOfNode" | "checkHolder">;

/** 403 unless the request may overwrite check `id` of `node` (nothing to check when it is new). */
export function requireCheckTakeover(c: Context, store: Reader, node: string, id: string): void {
  const old = checkOnNode(store, node, id);
  if (old === undefined) return;
  if (old.serviceId !== "") requireRight(c, "service", old.serviceName, "write");
  else requireRight(c, "node", node, "write");
}

/**
 * 403 unless the request may overwrite what registering `spec` replaces: the instance with its
 * ID (its service, and its node when `spec` moves it) and the checks with its checks' IDs.
 */
export function requireInstanceTakeover(
  c: Context,
  store: Reader,
  spec: Pick<Instance, "id" | "node" | "checks">,
): void {
  const old = store.instance(spec.id);
  if (old !== undefined) {
    requireRight(c, "service", old.service, "write");
    if (old.node !== spec.node) requireRight(c, "node", old.node, "write");
  }
  for (const check of spec.checks ?? []) requireCheckTakeover(c, store, spec.node, check.id);
}
