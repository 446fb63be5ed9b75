/**
 * Whether the CA can reach every member it may be sent to. The edge domain answers every alive
 * member running the proxy, and a CA validates from several places at once (Let's Encrypt and
 * pebble do): one of them reaching a member that is gone fails the challenge, and the name then
 * waits out a backoff. So the leader answers a challenge only while it hears from every such
 * member; one that went silent is either heard again or marked down (and leaves the edge
 * domain's answers) after the node timeout.
 *
 * @module
 */
import type { NodeInfo } from "../store/mod.ts";

/** Longest a member may go unheard by the leader before challenges wait for it. */
export const EDGE_CONTACT_MAX_MS = 3000;

/** A member as the leader sees it (MemberStatus). */
export interface MemberContact {
  name: string;
  /** ms since the leader last heard from it; null: never. */
  lastContactMs: number | null;
}

/**
 * The first member the edge domain names (alive, running the proxy) that the leader has not
 * heard from within `maxMs`, as a line for the log; null when every one is heard.
 */
export function silentEdgeMember(
  nodes: readonly NodeInfo[],
  members: readonly MemberContact[],
  maxMs = EDGE_CONTACT_MAX_MS,
): string | null {
  const contact = new Map(members.map((m) => [m.name, m.lastContactMs]));
  for (const n of nodes) {
    if (n.status !== "alive" || n.meta.proxy !== "true") continue;
    const ms = contact.get(n.name);
    if (ms === undefined) continue; // a node record without a member (an external node)
    if (ms === null) return `${n.name} was never heard from`;
    if (ms > maxMs) return `${n.name} was last heard ${Math.round(ms / 1000)}s ago`;
  }
  return null;
}
