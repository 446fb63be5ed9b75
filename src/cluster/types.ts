/**
 * What the rest of the agent sees of the cluster: a way to propose commands and a status. The
 * Raft cluster implements it, and so does the single-node LocalCluster of tests (testing.ts).
 *
 * @module
 */
import type { ApplyResult, Command, Session } from "../store/mod.ts";

/** A committed and applied proposal. */
export interface Proposed {
  index: number;
  result: ApplyResult;
}

export type Role = "leader" | "follower" | "candidate" | "learner" | "standalone";

export interface MemberStatus {
  id: number;
  name: string;
  address: string;
  role: "voter" | "learner";
  state: Role;
  lastContactMs: number | null;
  status: "alive" | "down";
  /**
   * Whose view `lastContactMs` is: the leader's (it hears from every member), or this member's
   * own when no leader could be asked (a follower hears from the leader only).
   */
  contactFrom: "leader" | "local";
}

export interface ClusterStatus {
  leader: string | null;
  leaderAddress: string | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  role: Role;
  node: string;
  /** Milliseconds since the leader was last heard from (0 on the leader, null: never). */
  lastContactMs: number | null;
}

export interface Cluster {
  /** Commits `command` through consensus, applies it locally, resolves with its index. */
  propose(command: Command): Promise<Proposed>;
  status(): ClusterStatus;
  /** The members as this member knows them (contact: its own view). */
  members(): MemberStatus[];
  /** The members as the leader knows them; this member's own view when no leader answers. */
  membersFromLeader(): Promise<MemberStatus[]>;
  /**
   * Restarts session `id`'s TTL on the leader (the request goes there); the session as the
   * leader has it, or undefined when it does not exist (any more).
   */
  renewSession(id: string): Promise<Session | undefined>;
  /** Resolves once the local replica has applied everything committed when it was called. */
  readBarrier(): Promise<number>;
  close(): Promise<void>;
}
