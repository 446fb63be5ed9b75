/**
 * Test helpers: Raft clusters built in process, one member per loopback address (127.0.0.x), each
 * with an in-memory store and raft log (or files in `dataDir`, to restart it with its data). Not
 * imported by production code.
 *
 * @module
 */
import { Store } from "../src/store/mod.ts";
import { RaftCluster, type RaftClusterOptions, Transport } from "../src/cluster/mod.ts";
import { waitFor as until } from "./wait.ts";
import { parseJoinToken } from "../src/lib/join_token.ts";
import { ClusterKeyBox, loadClusterKey } from "../src/pki/mod.ts";

export { until };

export interface TestMember {
  name: string;
  store: Store;
  cluster: RaftCluster;
  logs: string[];
  /** What `onFatal` was called with (a broken invariant, or this member learned it was removed). */
  fatal: Error[];
  /** A temporary directory of its TLS files, removed by closeAll. */
  tempDir?: string;
  /** A temporary directory of its raft log (BERTH_TEST_LOG_WRITER=worker), removed by closeAll. */
  raftDir?: string;
  /** Its cluster key box (with `clusterKeyDir`). */
  box?: ClusterKeyBox;
}

export type MemberOptions =
  & Partial<
    Pick<
      RaftClusterOptions,
      | "bootstrap"
      | "join"
      | "voters"
      | "nodeTimeoutMs"
      | "snapshotEntries"
      | "snapshotKeepEntries"
      | "nodeMeta"
      | "now"
      | "logWriter"
      | "wrapLogWriter"
    >
  >
  & {
    /** Keep the store and raft log in this directory (store.db, raft.db) instead of memory. */
    dataDir?: string;
    /**
     * Mutual TLS, as the agent runs by default (false: plain TCP, for tests that speak to a
     * member with a bare Transport). The key and certificates go to `dir` (default: `dataDir`,
     * or a temporary directory removed by closeAll). `joinToken` (text form) defaults to the
     * bootstrap token of the cluster at `join[0]`, or of the last cluster bootstrapped here.
     */
    tls?: false | { dir?: string; joinToken?: string; certTtlMs?: number };
    /** Keep a cluster key in this directory (its file read at start), as the agent does. */
    clusterKeyDir?: string;
    /** ClusterKeyOptions.inClear (default: with `tls: false`, as `--tls off --dev`). */
    clusterKeyInClear?: boolean;
    /** Listen on this port (a restart keeps its address); default: one the OS picks. */
    port?: number;
    /** The member's store (default: one opened here, in memory or in `dataDir`). */
    store?: Store;
  };

/** Cluster address of each member started here → the join token of its cluster. */
const tokenOf = new Map<string, string>();
let lastToken: string | undefined;

/** Starts a member called `name` listening on `host` (port chosen by the OS). */
export async function member(
  name: string,
  host: string,
  opts: MemberOptions = {},
): Promise<TestMember> {
  const store = opts.store ??
    Store.open(opts.dataDir === undefined ? ":memory:" : `${opts.dataDir}/store.db`);
  const tls = opts.tls === false ? undefined : opts.tls ?? {};
  const tempDir = tls !== undefined && tls.dir === undefined && opts.dataDir === undefined
    ? Deno.makeTempDirSync({ prefix: "berth-tls-" })
    : undefined;
  const joinToken = tls?.joinToken ??
    (opts.join?.[0] === undefined ? undefined : tokenOf.get(opts.join[0]) ?? lastToken);
  const logs: string[] = [];
  const fatal: Error[] = [];
  const keyDir = opts.clusterKeyDir;
  const box = keyDir === undefined ? undefined : new ClusterKeyBox(loadClusterKey(keyDir));
  // BERTH_TEST_LOG_WRITER=worker: every member's raft log in a file written by the log worker
  // (the agent's default), to run the in-process suites with both writers.
  const writer = opts.logWriter ?? Deno.env.get("BERTH_TEST_LOG_WRITER");
  const raftDir = writer === "worker" && opts.dataDir === undefined
    ? Deno.makeTempDirSync({ prefix: "berth-raftlog-" })
    : undefined;
  const raftPath = opts.dataDir !== undefined
    ? `${opts.dataDir}/raft.db`
    : raftDir !== undefined
    ? `${raftDir}/raft.db`
    : ":memory:";
  const cluster = new RaftCluster({
    store,
    raftPath,
    ...(writer === "worker" || writer === "inline" ? { logWriter: writer } : {}),
    ...(opts.wrapLogWriter === undefined ? {} : { wrapLogWriter: opts.wrapLogWriter }),
    node: name,
    bind: { host, port: opts.port ?? 0 },
    advertise: host,
    bootstrap: opts.bootstrap ?? false,
    join: opts.join ?? [],
    voters: opts.voters ?? 3,
    nodeTimeoutMs: opts.nodeTimeoutMs ?? 10_000,
    tickMs: 20,
    ...(opts.snapshotEntries === undefined ? {} : { snapshotEntries: opts.snapshotEntries }),
    ...(opts.snapshotKeepEntries === undefined
      ? {}
      : { snapshotKeepEntries: opts.snapshotKeepEntries }),
    ...(opts.nodeMeta === undefined ? {} : { nodeMeta: opts.nodeMeta }),
    ...(opts.now === undefined ? {} : { now: opts.now }),
    ...(tls === undefined ? {} : {
      tls: {
        dir: tls.dir ?? opts.dataDir ?? tempDir!,
        certTtlMs: tls.certTtlMs ?? 72 * 3_600_000,
        ...(joinToken === undefined ? {} : { joinToken: parseJoinToken(joinToken) }),
      },
    }),
    ...(box === undefined ? {} : {
      clusterKey: { box, dir: keyDir!, inClear: opts.clusterKeyInClear ?? tls === undefined },
    }),
    log: (l) => logs.push(l),
    onFatal: (e) => fatal.push(e),
  });
  try {
    await cluster.start();
  } catch (e) {
    await cluster.close();
    store.close();
    if (tempDir !== undefined) Deno.removeSync(tempDir, { recursive: true });
    if (raftDir !== undefined) Deno.removeSync(raftDir, { recursive: true });
    throw e;
  }
  const token = cluster.bootstrapToken ?? joinToken;
  if (token !== undefined) tokenOf.set(cluster.address, token);
  if (cluster.bootstrapToken !== undefined) lastToken = cluster.bootstrapToken;
  return {
    name,
    store,
    cluster,
    logs,
    fatal,
    ...(tempDir === undefined ? {} : { tempDir }),
    ...(raftDir === undefined ? {} : { raftDir }),
    ...(box === undefined ? {} : { box }),
  };
}

/** Three members a, b, c on 127.0.0.1–3, all voters. */
export async function threeMembers(opts: MemberOptions = {}): Promise<TestMember[]> {
  const m1 = await member("a", "127.0.0.1", { ...opts, bootstrap: true });
  const m2 = await member("b", "127.0.0.2", { ...opts, join: [m1.cluster.address] });
  const m3 = await member("c", "127.0.0.3", { ...opts, join: [m1.cluster.address] });
  const all = [m1, m2, m3];
  await until("three voters", () => all.every((m) => m.store.confState().voters.length === 3));
  return all;
}

/** The member that leads, once all agree on one. */
export async function leaderOf(ms: TestMember[]): Promise<TestMember> {
  await until("a leader", () => ms.some((m) => m.cluster.status().role === "leader"));
  return ms.find((m) => m.cluster.status().role === "leader")!;
}

export async function closeAll(ms: TestMember[]): Promise<void> {
  for (const m of ms) {
    await m.cluster.close();
    m.store.close();
    if (m.tempDir !== undefined) Deno.removeSync(m.tempDir, { recursive: true });
    if (m.raftDir !== undefined) Deno.removeSync(m.raftDir, { recursive: true });
  }
}

/**
 * A bare transport on `host` that says it is member `nodeId` of `clusterId` and answers nothing:
 * a peer a test drives by hand (malformed frames, raw requests). Started; the test closes it.
 */
export async function rawPeer(
  host: string,
  hello: { clusterId: string; nodeId: number },
): Promise<Transport> {
  const t = new Transport({
    listen: { host, port: 0 },
    self: () => ({ ...hello, address: `${host}:1` }),
    onMessage: () => {},
    onRequest: () => Promise.resolve(null),
    log: () => {},
  });
  await t.start();
  return t;
}
