/**
 * What the rest of the agent sees of the cluster: a way to propose commands and a status. The
 * Raft cluster implements it, and so does the single-node LocalCluster of tests (testing.ts).
 *
 * @module
 */
import type { HostPort } from "../lib/host_port.ts";
import type { ApplyResult, Command, Session, Store } from "../store/mod.ts";
import type { JoinToken } from "../lib/join_token.ts";
import type { ClusterKeyBox } from "../pki/mod.ts";
import type { LogWriter, LogWriterKind } from "./log_writer.ts";

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

/** What a RaftCluster is built from (raft_cluster.ts). */
export interface RaftClusterOptions {
  store: Store;
  /** Path of the raft log database (`<data-dir>/raft.db`), `:memory:` in tests. */
  raftPath: string;
  /**
   * Who writes the raft log (log_writer.ts): "worker" (the default for a file: a thread of its
   * own commits and fsyncs) or "inline" (on the event loop; always for `:memory:`).
   */
  logWriter?: LogWriterKind;
  /** Tests: wraps the log writer (to hold its acknowledgements back). */
  wrapLogWriter?: (w: LogWriter) => LogWriter;
  /**
   * SQLite files whose WAL the log worker checkpoints (the store's, opened with
   * `autoCheckpoint: false`); needs the worker writer.
   */
  checkpointPaths?: string[];
  node: string;
  /** Cluster listen address (`--bind`). */
  bind: HostPort;
  /** Address other members dial (`--advertise` with the port of `--bind`). */
  advertise: string;
  bootstrap: boolean;
  join: string[];
  /** Voters the cluster grows to by promoting caught-up learners. */
  voters: number;
  nodeTimeoutMs: number;
  /** Milliseconds per raft tick (default TICK_MS_DEFAULT, _core.ts). */
  tickMs?: number;
  /** Applied entries past the last snapshot that trigger a new one (SNAPSHOT_ENTRIES_DEFAULT). */
  snapshotEntries?: number;
  /** Entries kept behind a snapshot (SNAPSHOT_KEEP_ENTRIES_DEFAULT). */
  snapshotKeepEntries?: number;
  /** Where snapshot files live (default: `snapshots` beside raftPath; a temp dir for :memory:). */
  snapshotDir?: string;
  log?: (line: string) => void;
  /** Called once if this member must stop (a broken invariant or a failed disk write). */
  onFatal?: (e: Error) => void;
  /** Random integer in [0, n) for raft's election jitter. */
  random?: (n: number) => number;
  now?: () => number;
  /**
   * When given, the cluster registers this node in the catalog (address `advertise`, this meta)
   * as part of bootstrapping and joining: the leader commits the node record before the conf
   * change that adds the member, so no member lists it while the catalog lacks its node. On a
   * restart the record is brought up to date.
   */
  nodeMeta?: Record<string, string>;
  /**
   * Called once, only when `--bootstrap` makes a new cluster: commands applied with its first
   * entries (the agent's ACL management token), so the cluster never exists without them.
   */
  bootstrapCommands?: () => Command[];
  /**
   * Mutual TLS between members, with the CA, join tokens, enrollment and renewal (_security.ts);
   * absent: plain TCP (`--dev --tls off`).
   */
  tls?: ClusterTlsOptions;
  /**
   * The cluster key's box and the data directory its file lives in: made at bootstrap, handed
   * to joiners, fetched when missing (_cluster_key.ts). Absent: no cluster key (tests).
   */
  clusterKey?: ClusterKeyOptions;
}

/** What a RaftCluster is given to keep the cluster key (_cluster_key.ts). */
export interface ClusterKeyOptions {
  /** The member's box (agent.ts passes the same one to whoever seals and opens). */
  box: ClusterKeyBox;
  /** The data directory, where `cluster-key` lives. */
  dir: string;
  /**
   * Whether `clusterkey.get` is answered on plain TCP, where the member id a peer claims is not
   * checked: only a `--tls off --dev` cluster says so (the agent logs a warning at start).
   * Otherwise the key goes only over mutual TLS. Default false.
   */
  inClear?: boolean;
}

/** What a RaftCluster with TLS is given. */
export interface ClusterTlsOptions {
  /** Directory of node.key, node.crt, ca.crt and join-token (the data directory). */
  dir: string;
  /** `--join-token`: for joining (or enrolling again a member its own state does not list). */
  joinToken?: JoinToken;
  /** Lifetime of the certificates this member issues while it leads (`--cert-ttl`). */
  certTtlMs: number;
  /** `--ca-cert/--ca-key`: the CA a bootstrap uses instead of making one. */
  ca?: { certPem: string; keyPem: string };
}
