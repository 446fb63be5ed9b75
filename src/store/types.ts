/**
 * Plain data types of the replicated state: nodes, service instances, KV entries, and the
 * commands that change them. Everything here is msgpack-serializable (it travels in Raft
 * entries) and JSON-friendly (it is what the API shows).
 *
 * @module
 */
import type { AcmeCommand } from "./acme_types.ts";
import type { AclPolicySpec, AclTokenSpec, CertRecord, EdgeCert } from "./security_types.ts";
import type { SessionSpec, TxnOp, TxnOutcome } from "./kv_types.ts";

export * from "./security_types.ts";
export * from "./kv_types.ts";

/** Health of one instance, or of one of its sources. Only `passing` instances are served. */
export type CheckStatus = "passing" | "warning" | "critical";
export const CHECK_STATUSES: readonly CheckStatus[] = ["passing", "warning", "critical"];

/**
 * What the Docker engine says about an instance's container: `running` (no HEALTHCHECK),
 * HEALTHCHECK `healthy` / `starting` / `unhealthy`, `paused`, `restarting`, or `stopping` (it got
 * a stop signal and still runs). Only `running` and `healthy` pass (see health.ts).
 */
export type DockerState =
  | "running"
  | "healthy"
  | "starting"
  | "unhealthy"
  | "paused"
  | "restarting"
  | "stopping";
export const DOCKER_STATES: readonly DockerState[] = [
  "running",
  "healthy",
  "starting",
  "unhealthy",
  "paused",
  "restarting",
  "stopping",
];

/** The Docker watcher's verdict on a Docker instance (the only writer of it). */
export interface DockerVerdict {
  state: DockerState;
  /** The last HEALTHCHECK output when `unhealthy` (trimmed, bounded); empty otherwise. */
  detail: string;
}

/** The last result of an instance's check: the health checker's, or the registrant's. */
export interface CheckResult {
  status: CheckStatus;
  /** What the check saw: `HTTP GET /health: 200 OK`. */
  output: string;
}

/** Liveness of a member as seen by the leader. */
export type NodeStatus = "alive" | "down";

/** An active health check run by the node that owns the instance. */
export interface CheckDefinition {
  /** HTTP path (`/health`) probed with GET; 2xx passes, 429 warns, anything else fails. */
  http?: string;
  /** When true, a TCP connect to the instance's address and port. */
  tcp?: boolean;
  /**
   * When true, the gRPC health protocol over h2c (`grpc.health.v1.Health/Check` for the whole
   * server): SERVING passes, anything else fails.
   */
  grpc?: boolean;
  /**
   * A UDP check (an instance of a UDP port), as Consul's: this datagram (escapes as in
   * src/lib/escaped_bytes.ts; "" an empty one) goes to the instance; an ICMP refusal fails, a
   * reply or silence within the timeout passes. With `udpExpect`, a reply containing it must come.
   */
  udp?: string;
  /** With `udp`: text (same escapes) the reply must contain; no reply then fails. */
  udpExpect?: string;
  /**
   * Set when a label guarding the check was bad (`berth.check.udp.expect`): the check fails
   * closed, each run critical with this text and nothing probed, instead of running weaker.
   */
  failClosed?: string;
  intervalMs: number;
  timeoutMs: number;
}

/**
 * How a registered check gets its results: `ttl` the registrant reports them
 * (`/v1/agent/check/pass|warn|fail|update`) and the owner turns the check critical when none
 * came for `ttlMs`; `http` / `tcp` / `grpc` / `udp` the owner's health checker probes `target` as
 * given (`grpc`: the gRPC health protocol over h2c; `udp`: Consul's UDP check, an empty datagram);
 * `reported` results come with the registration (catalog registrations of external services).
 */
export type CheckKind = "ttl" | "http" | "tcp" | "grpc" | "udp" | "reported";
export const CHECK_KINDS: readonly CheckKind[] = ["ttl", "http", "tcp", "grpc", "udp", "reported"];

/**
 * A check registered through the Consul API (`/v1/agent/check/register`, a service definition's
 * Check/Checks, a catalog registration), with its last result. Bound to a service instance (it
 * is in `Instance.checks`) or to a node (in `NodeInfo.checks`). The node it is on owns it: that
 * node's agent runs it, takes its reports and decides when its TTL ran out (checks.ts).
 */
export interface RegisteredCheck {
  /** Consul's CheckID, unique among the checks of its node. */
  id: string;
  name: string;
  notes: string;
  kind: CheckKind;
  /**
   * `http`: the URL requested, as given; `tcp`: the `host:port` connected to; `grpc`:
   * `host:port` or `host:port/service` (the service name asked about); `udp`: the `host:port`
   * sent to; "" otherwise.
   */
  target: string;
  /** `ttl`: how long a reported result holds; 0 for other kinds. */
  ttlMs: number;
  /** `http` / `tcp` / `grpc` / `udp`: time between runs and the timeout of one run; else 0. */
  intervalMs: number;
  timeoutMs: number;
  /** A service whose check stays critical this long is deregistered by its owner; 0: never. */
  deregisterCriticalAfterMs: number;
  status: CheckStatus;
  output: string;
}

/** One registered endpoint of a service: a container port on a node, or a manual registration. */
export interface Instance {
  /** `<node>:<container-name>:<port>[:udp]` for Docker instances; any unique string otherwise. */
  id: string;
  service: string;
  node: string;
  address: string;
  port: number;
  tags: string[];
  meta: Record<string, string>;
  weight: number;
  /** Container id for Docker-sourced instances, `null` for API registrations. */
  containerId: string | null;
  /** Host headers the HTTP proxy routes to this instance's service. */
  httpHosts: string[];
  /** Path prefix routed to this service (with the hosts, or alone on any host). */
  httpPath: string | null;
  /** TCP port every proxy member listens on for this service. */
  tcpPort: number | null;
  check: CheckDefinition | null;
  /**
   * Health source 1 of 3, written by the Docker watcher only (`docker` command): set exactly
   * when `containerId` is.
   */
  docker: DockerVerdict | null;
  /**
   * Health source 2 of 3, written by the health checker (`check` command) or, for API
   * registrations, by the registrant. `null`: no result yet (critical "awaiting first check" when
   * `check` is set; no check source otherwise). A Docker instance without `check` has none.
   * Source 3, node liveness, is the node's `status`. health.ts derives the instance's health.
   */
  checkResult: CheckResult | null;
  /**
   * Checks registered through the Consul API for this instance, in registration order
   * (absent: none). Each one is a further part of the check source: health.ts takes the worst.
   */
  checks?: RegisteredCheck[];
  createIndex: number;
  modifyIndex: number;
}

/** The fields a proposer supplies for an instance; indexes are assigned by apply(). */
export type InstanceSpec = Omit<Instance, "createIndex" | "modifyIndex">;

export interface NodeInfo {
  name: string;
  address: string;
  status: NodeStatus;
  meta: Record<string, string>;
  /** Node-level checks (no ServiceID); absent: none. Part of the node source in health.ts. */
  checks?: RegisteredCheck[];
  createIndex: number;
  modifyIndex: number;
}

/** A Raft member as the replicated state knows it. */
export interface MemberInfo {
  id: number;
  name: string;
  /** Cluster (Raft RPC) address, `ip:port`. */
  address: string;
  /** The joiner's random token: a retried join (same token) gets the same id back. */
  nonce?: string;
}

export interface Member extends MemberInfo {
  role: "voter" | "learner";
}

export interface KvEntry {
  key: string;
  value: Uint8Array;
  flags: number;
  createIndex: number;
  modifyIndex: number;
  lockIndex: number;
}

/**
 * The commands the replicated log carries. Applying one reads no clock and no local state beyond
 * the store, so every member reaches the same state: time-dependent facts (a node is down, a
 * check failed) are decided by the proposer and carried in the command.
 */
export type Command =
  //
  // The commands that can turn a check critical or remove it carry `nowMs?`: the leader's clock,
  // stamped when it appends the entry. A session bound to such a check ends in the same apply,
  // its keys' lock-delay measured from that time (sessions.ts endSessionsOfFailedChecks; an
  // entry without it, written before it existed, starts the delay at 0).
  | {
    type: "node.register";
    name: string;
    address: string;
    meta: Record<string, string>;
    nowMs?: number;
  }
  /** Node liveness, proposed by the leader (or a node about itself). */
  | { type: "node.status"; name: string; status: NodeStatus; nowMs?: number }
  | { type: "register"; instance: InstanceSpec; nowMs?: number }
  | { type: "deregister"; id: string; nowMs?: number }
  /** Sets an instance's check result (the health checker; API registrations' reporters). */
  | { type: "check"; id: string; status: CheckStatus; output: string; nowMs?: number }
  /**
   * Registers (or replaces) check `check.id` on `node`: bound to the instance `serviceId` of
   * that node, or node-level when null. A check of that id elsewhere on the node is removed.
   */
  | {
    type: "check.register";
    node: string;
    serviceId: string | null;
    check: RegisteredCheck;
    nowMs?: number;
  }
  /** Sets the result of a registered check (its owner: a TTL report or expiry, a probe). */
  | {
    type: "check.update";
    node: string;
    id: string;
    status: CheckStatus;
    output: string;
    nowMs?: number;
  }
  | { type: "check.deregister"; node: string; id: string; nowMs?: number }
  /** Sets a Docker instance's Docker verdict (the Docker watcher). */
  | { type: "docker"; id: string; state: DockerState; detail: string; nowMs?: number }
  | { type: "kv.put"; key: string; value: Uint8Array; flags: number; cas?: number }
  | { type: "kv.delete"; key: string; recurse?: boolean; cas?: number }
  /** Creates a session (its id a UUID chosen by the proposer); refused for an unknown node or a
   * check that is missing or critical (sessions.ts). */
  | { type: "session.create"; session: SessionSpec }
  /**
   * Ends a session: destroyed by a client, its TTL passed or one of its checks turned critical
   * (the leader decides the last two). Its locks are released or its keys deleted (Behavior), and
   * each of those keys refuses a new lock until `nowMs` (the leader's clock, stamped when it
   * appends the entry) + its LockDelay.
   */
  | { type: "session.destroy"; id: string; nowMs: number }
  /** `PUT /v1/kv/KEY?acquire=SESSION`: sets the value and takes the lock (sessions.ts). */
  | {
    type: "kv.lock";
    key: string;
    value: Uint8Array;
    flags: number;
    session: string;
    /** The leader's clock (stamped when it appends the entry), checked against the lock-delay. */
    nowMs: number;
    cas?: number;
  }
  /** `PUT /v1/kv/KEY?release=SESSION`: sets the value and gives the lock up. */
  | {
    type: "kv.unlock";
    key: string;
    value: Uint8Array;
    flags: number;
    session: string;
    cas?: number;
  }
  /** `/v1/txn`: KV operations applied all or none (txn.ts); `nowMs` as for kv.lock. */
  | { type: "txn"; ops: TxnOp[]; nowMs: number }
  /**
   * Applied whole or not at all: when a sub-command fails, the state is left unchanged and the
   * result's error names the sub-command (`batch command <n> (<type>): <why>`).
   */
  | { type: "batch"; commands: Command[] }
  /**
   * A restore of a user snapshot, replicated in bounded pieces: begin empties the staging area,
   * each chunk (SNAPSHOT_CHUNK_BYTES at most, seq 0, 1, …) is checked and its rows staged,
   * commit (with the chunk count and bytes) replaces services, nodes and KV with the staged ones
   * in one apply (membership is kept) or changes nothing; abort empties the staging area.
   */
  | { type: "restore.begin"; id: string }
  | { type: "restore.chunk"; id: string; seq: number; data: Uint8Array }
  | {
    type: "restore.commit";
    id: string;
    chunks: number;
    bytes: number;
    /** The ACL tables are replaced too, by the staged ones (from an opened sealed section). */
    acl?: true;
    /** The edge certificates are replaced too (keys re-sealed under this cluster's key). */
    certs?: true;
  }
  | { type: "restore.abort"; id: string }
  | {
    type: "conf";
    voters: number[];
    learners: number[];
    /** The member a change added (its name and cluster address come from the join). */
    upsert?: MemberInfo;
    /** The member a change removed. */
    remove?: number;
  }
  /** Creates or replaces an ACL policy (acl_tables.ts); its name is unique. */
  | { type: "acl.policy.set"; policy: AclPolicySpec }
  | { type: "acl.policy.delete"; id: string }
  /**
   * Creates or replaces an ACL token. `secretHash` is required to create one and may be left out
   * to keep the secret of an existing token (it never changes). Policy links by name are turned
   * into ids at apply; an unknown policy refuses the command.
   */
  | { type: "acl.token.set"; token: AclTokenSpec }
  | { type: "acl.token.delete"; accessorId: string }
  /**
   * `PUT /v1/acl/bootstrap`: stores `token` linked to global-management, only while the store
   * never had a management token (a store from before ACLs, whose cluster was bootstrapped
   * without one; the marker: acl_tables.ts); refused otherwise.
   */
  | { type: "acl.bootstrap"; token: AclTokenSpec }
  /**
   * Cluster security (pki_state.ts): the CA, set once at bootstrap; join tokens (the secret
   * only as its hash); the certificates issued to members, revoked when their member is removed.
   * `nowMs` is the leader's clock, stamped when it appends the entry.
   */
  | { type: "pki.init"; caCert: string; caKey: string }
  | {
    type: "token.create";
    id: string;
    /** sha256 (hex) of the secret. */
    hash: string;
    /** Lifetime from `nowMs`; null: no expiry. */
    ttlMs: number | null;
    /** Joins it allows; null: any number. */
    uses: number | null;
    description: string;
    nowMs: number;
  }
  | { type: "token.revoke"; id: string; nowMs: number }
  /** An enrollment: spends one use of a valid token and records the certificate it issued. */
  | { type: "token.use"; id: string; hash: string; cert: CertRecord; nowMs: number }
  /** A certificate issued to a member (bootstrap, renewal). */
  | { type: "cert.record"; cert: CertRecord; nowMs: number }
  /**
   * Edge certificates the proxy serves (edge_certs.ts): `cert.put` adds or replaces one by name
   * (its key sealed under the cluster key before it is proposed; putting a default clears the
   * old default), `cert.rm` removes one.
   */
  | { type: "cert.put"; cert: EdgeCert }
  | { type: "cert.rm"; name: string }
  /** ACME ordering state (acme_types.ts, acme_state.ts). */
  | AcmeCommand
  /** The cluster key's fingerprint (never the key): the first set stays (edge_certs.ts). */
  | { type: "clusterkey.set"; fingerprint: string }
  | { type: "noop" };

/** What apply() reports back to the proposer: `ok` false for a failed CAS or an invalid command. */
export interface ApplyResult {
  ok: boolean;
  /** Set when the command was rejected as invalid (state unchanged). */
  error?: string;
  /** A `txn`'s outcome (txn.ts): its results when `ok`, the failed operations otherwise. */
  txn?: TxnOutcome;
  /**
   * A `restore.chunk` that arrived ahead of its turn: the chunk the restore expects next. Nothing
   * changed and the restore goes on; the sender sends the chunks from that one again, in order.
   */
  restoreNext?: number;
}

/**
 * The commands that can turn a check critical or remove it: they carry the leader's `nowMs`, and
 * the sessions bound to such a check end in the same apply (sessions.ts).
 */
export const CHECK_TIMED_TYPES = [
  "node.register",
  "node.status",
  "register",
  "deregister",
  "check",
  "check.register",
  "check.update",
  "check.deregister",
  "docker",
] as const;
export type CheckTimedCommand = Extract<Command, { type: (typeof CHECK_TIMED_TYPES)[number] }>;

/** The tables whose contents a change touched, for change-feed subscribers. */
export type Table =
  | "nodes"
  | "instances"
  | "kv"
  | "members"
  | "sessions"
  | "acl"
  | "edge_certs"
  | "acme";

export interface Change {
  /** The applied index after the change. */
  index: number;
  /** Tables that changed at this index (empty when the entry changed nothing). */
  tables: Set<Table>;
  /** Service names whose instances changed. */
  services: Set<string>;
  /** KV keys that changed. */
  keys: Set<string>;
  /**
   * Instance rows the change wrote, one per id, in the order first touched: the row as it was
   * before the applied entries and as it is after them (null: absent). Empty when `reset`.
   */
  instances: readonly InstanceDelta[];
  /** Node rows the change wrote, one per name, like `instances`. Empty when `reset`. */
  nodes: readonly NodeDelta[];
  /**
   * The whole state may have changed (a snapshot installed, a restore committed): deltas are
   * not given, and a view rebuilds from the store.
   */
  reset: boolean;
}

/** One instance row before and after a change; `before` and `after` are never both null. */
export interface InstanceDelta {
  id: string;
  before: Instance | null;
  after: Instance | null;
}

/** One node row before and after a change; `before` and `after` are never both null. */
export interface NodeDelta {
  name: string;
  before: NodeInfo | null;
  after: NodeInfo | null;
}
