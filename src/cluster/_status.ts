/**
 * What a member reports about the cluster (`berth status`, `berth members`, `/v1/status/*`):
 * read from the runtime's state and the store's member table, never stored as text.
 *
 * @module
 */
import type { Member } from "../store/mod.ts";
import type { ClusterCore } from "./_core.ts";
import type { ClusterStatus, MemberStatus, Role } from "./types.ts";

/** This member's view of the cluster. */
export function clusterStatus(c: ClusterCore): ClusterStatus {
  const hs = c.storage.hardState();
  const leaderMember: Member | undefined = c.store.members().find((m) => m.id === c.leader);
  return {
    leader: c.leader === 0 ? null : (leaderMember?.name ?? `id ${c.leader}`),
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
      ...(st?.progress?.get(m.id) ? { match: st.progress.get(m.id)!.match } : {}),
    };
  });
}
