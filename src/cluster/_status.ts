/**
 * What a member reports about the cluster (`berth status`, `berth members`, `/v1/status/*`):
 * read from the runtime's state and the store's member table, never stored as text.
 *
 * @module
 */
import type { ClusterCore } from "./_core.ts";
import { forward } from "./_requests.ts";
import type { ClusterStatus, MemberStatus, Role } from "./types.ts";

/**
 * This member's view of the cluster, from memory only (every API answer's X-Consul-KnownLeader
 * and -LastContact come from it): names from the applied membership (MemberView).
 */
export function clusterStatus(c: ClusterCore): ClusterStatus {
  const hs = c.storage.hardState();
  return {
    leader: c.leader === 0 ? null : c.members.name(c.leader),
    leaderAddress: c.leader === 0 ? null : (c.addresses.get(c.leader) ?? null),
    term: hs.term,
    commitIndex: hs.commit,
    appliedIndex: c.store.appliedIndex(),
    role: c.node === undefined ? "standalone" : c.currentRole(),
    node: c.o.node,
    lastContactMs: c.role === "leader"
      ? 0
      : c.leaderContact === undefined
      ? null
      : Math.max(0, c.o.now() - c.leaderContact),
  };
}

/** Longest a follower waits for the leader's view of the members before showing its own. */
export const MEMBERS_TIMEOUT_MS = 2000;

/** Every member with its role, state, last contact (as this member knows it) and node status. */
export function memberStatuses(c: ClusterCore): MemberStatus[] {
  const st = c.node?.status();
  const now = c.o.now();
  const self = c.identity?.id;
  return c.store.members().map((m) => {
    const heard = m.id === self ? now : c.heard.get(m.id);
    const node = c.store.node(m.name);
    const state: Role = m.id === c.leader
      ? "leader"
      : m.role === "learner"
      ? "learner"
      : "follower";
    return {
      id: m.id,
      name: m.name,
      address: m.address,
      role: m.role,
      state: m.id === self ? c.currentRole() : state,
      lastContactMs: heard === undefined ? null : now - heard,
      status: node?.status ?? "alive",
      contactFrom: c.role === "leader" ? "leader" : "local",
      ...(st?.progress?.get(m.id) ? { match: st.progress.get(m.id)!.match } : {}),
    };
  });
}

/**
 * The members as the leader knows them: last contact is the leader's, who hears from everyone.
 * Asked of the leader over the transport; this member's own view (marked `local`) when there is
 * no leader or it does not answer within MEMBERS_TIMEOUT_MS.
 */
export async function membersFromLeader(c: ClusterCore): Promise<MemberStatus[]> {
  if (c.role === "leader" || c.node === undefined || c.leader === 0) return memberStatuses(c);
  try {
    const got = await forward(c, {
      body: { t: "members" },
      timeoutMs: MEMBERS_TIMEOUT_MS,
      what: "ask",
    });
    if (isMemberList(got)) return got.map((m) => ({ ...m, contactFrom: "leader" as const }));
    c.o.log("cluster: the leader answered the members question with a malformed list");
  } catch { /* no leader reachable: this member's own view, marked local */ }
  return memberStatuses(c);
}

function isMemberList(v: unknown): v is MemberStatus[] {
  return Array.isArray(v) &&
    v.every((m) =>
      typeof m?.id === "number" && typeof m.name === "string" && typeof m.address === "string" &&
      (m.role === "voter" || m.role === "learner") && typeof m.state === "string" &&
      (m.lastContactMs === null || typeof m.lastContactMs === "number") &&
      (m.status === "alive" || m.status === "down")
    );
}
