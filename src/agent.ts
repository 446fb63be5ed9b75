/**
 * The composition root: builds every part of a berth agent from one Config and starts and stops
 * them in order. The only module that knows all parts.
 *
 * Start order (each part only needs those before it): data directory lock → store → cluster
 * (which registers this node's catalog record with the member: at bootstrap, on joining, updated
 * on a restart) → DNS, API, proxy (readers of the store; the proxy last, so the TCP route
 * listeners it opens from stored routes come after every listener of the agent's own) → health
 * checker and Docker watcher (writers).
 * Stop order is the reverse, so no writer proposes into a closed cluster. SIGTERM drains the
 * data plane first (`drain`: proxy and DNS stop accepting and finish what is in flight); SIGHUP
 * re-reads `--config` (`reload`). Both in src/agent_signals.ts; README "Shutdown and reload".
 *
 * @module
 */
import {
  ApiServer,
  AutoTls,
  type ClusterAdmin,
  readTlsFiles,
  serveAutoTls,
  type TlsMaterial,
} from "./api/mod.ts";
import { BOOTSTRAP_TOKEN_TTL_MS, JOIN_TOKEN_FILE, RaftCluster } from "./cluster/mod.ts";
import { agentHelp, type Config, ConfigError, loadConfig } from "./config.ts";
import {
  type Drain,
  drainParts,
  type Reload,
  reloadConfig,
  reloadParts,
  reopenLogs,
} from "./agent_signals.ts";
import { openDataDir, RAFT_FILE, STORE_FILE, writeSecretFile } from "./data_dir.ts";
import { MANAGEMENT_TOKEN_FILE, managementToken } from "./acl/bootstrap.ts";
import { startDns } from "./agent_dns.ts";
import { DockerWatcher } from "./docker/mod.ts";
import { CheckTimers, HealthChecker } from "./health/mod.ts";
import { formatHostPort } from "./lib/host_port.ts";
import { ClusterKeyBox, loadClusterKey } from "./pki/mod.ts";
import { checkAccessLog, type ProxyFront, proxyNote, startProxy } from "./agent_proxy.ts";
import { answerExplainQueries, explainSources } from "./agent_explain.ts";
import { dataPlaneMetrics } from "./agent_metrics.ts";
import { AcmeClient, AcmeManager, acmeNamesOf, csr, silentEdgeMember } from "./acme/mod.ts";
import { Store } from "./store/mod.ts";
import { VERSION } from "./version.ts";
import { errorText } from "./lib/error_text.ts";
import { openFileLimit, raiseOpenFileLimit } from "./lib/fd_limit.ts";
import { LoopProbe } from "./lib/loop_probe.ts";

export interface AgentOptions {
  log?: (line: string) => void;
  /** Called when the agent should stop by itself: after `berth leave` (code 0) or when its
   * cluster member had to stop (code 1; a supervisor restarts it). */
  onExit?: (code: number) => void;
  /** Where the secrets a bootstrap makes are shown, once (default: stdout). */
  out?: (line: string) => void;
  /**
   * Whether `out` is a terminal (default: `Deno.stdout.isTerminal()`). Only a terminal is shown
   * the secrets themselves; otherwise (journald, docker logs) only the files holding them.
   */
  terminal?: boolean;
  /**
   * Runs the event-loop probe that GET /v1/berth/loop reads (default: env BERTH_LOOP_PROBE=1;
   * benches set it).
   */
  loopProbe?: boolean;
}

/** The line that shows a bootstrap secret on a terminal, or only its file's path elsewhere. */
export function secretLine(what: string, path: string, secret: string, terminal: boolean): string {
  return terminal
    ? `berth: ${what} (shown once; also in ${path}): ${secret}`
    : `berth: ${what} written to ${path} (its secret is shown only on a terminal)`;
}

export class Agent {
  #config: Config;
  readonly store: Store;
  readonly cluster: RaftCluster;
  readonly #log: (line: string) => void;
  readonly #onExit: (code: number) => void;
  /** The parts that write (Docker watcher, health checker), stopped first on leave. */
  #writers: (() => Promise<void>)[] = [];
  #stops: (() => Promise<void> | void)[] = [];
  /** The data plane's graceful shutdowns (proxy, DNS): each resolves with how many it cut. */
  #drains: Drain[] = [];
  /** What takes over reloaded settings (SIGHUP), given the config to run with. */
  #reloads: Reload[] = [];
  /** What SIGUSR1 reopens (the access log file). */
  #reopens: (() => Promise<void>)[] = [];
  /** The config the API shows (GET /v1/agent/self), updated by a reload. */
  readonly #shownConfig: Record<string, unknown>;
  #stopped = false;
  /** The API's certificate and key from --http-tls-cert/--http-tls-key, read at start. */
  #httpTls: TlsMaterial | null = null;
  /** Seals and opens certificate keys once this member has the cluster key. */
  #keyBox: ClusterKeyBox = new ClusterKeyBox();
  readonly #loopProbe: LoopProbe | undefined;

  private constructor(config: Config, store: Store, cluster: RaftCluster, opts: AgentOptions) {
    this.#config = config;
    this.#shownConfig = publicConfig(config);
    this.store = store;
    this.cluster = cluster;
    this.#log = opts.log ?? ((line: string) => console.error(line));
    this.#onExit = opts.onExit ?? (() => {});
    const probe = opts.loopProbe ?? Deno.env.get("BERTH_LOOP_PROBE") === "1";
    this.#loopProbe = probe ? new LoopProbe() : undefined;
  }

  /** The config in use (a SIGHUP may have changed its reloadable settings). */
  get config(): Config {
    return this.#config;
  }

  /** Starts every part; on a failure, stops what had started and rethrows. */
  static async start(config: Config, opts: AgentOptions = {}): Promise<Agent> {
    // A wrong certificate file or access log path stops the start before anything else happens.
    const httpTls = config.httpTls.mode === "files"
      ? readTlsFiles(config.httpTls.cert, config.httpTls.key)
      : null;
    await checkAccessLog(config);
    const dataDir = openDataDir(config.dataDir, config.node);
    // The Raft log (raft.db, synchronous=FULL) is what makes writes durable; the store only
    // needs to be consistent: after a crash it is at an earlier applied index (kept in the same
    // transaction as the data) and raft replays the rest. So no fsync per apply.
    let store: Store;
    // The cluster key (src/pki/cluster_key.ts) seals the certificate keys in the store; a member
    // without its file gets it from the cluster (src/cluster/_cluster_key.ts).
    let keyBox: ClusterKeyBox;
    try {
      keyBox = new ClusterKeyBox(loadClusterKey(config.dataDir));
      // Its WAL is checkpointed by the raft log's worker thread (checkpointPaths below).
      store = Store.open(`${config.dataDir}/${STORE_FILE}`, {
        synchronous: "NORMAL",
        autoCheckpoint: false,
      });
    } catch (e) {
      dataDir.release();
      throw e;
    }
    let managementSecret: string | undefined;
    let cluster: RaftCluster;
    try {
      cluster = new RaftCluster({
        store,
        raftPath: `${config.dataDir}/${RAFT_FILE}`,
        checkpointPaths: [`${config.dataDir}/${STORE_FILE}`],
        node: config.node,
        bind: config.bind,
        advertise: config.advertise,
        bootstrap: config.bootstrap,
        join: config.join,
        voters: config.voters,
        nodeTimeoutMs: config.nodeTimeoutMs,
        onFatal: () => opts.onExit?.(1),
        // This node's catalog record: registered with the member (before it is listed).
        nodeMeta: {
          proxy: config.proxyHttp === null && config.proxyHttps === null ? "false" : "true",
          "berth-version": VERSION,
        },
        // A new cluster's ACL management token: its secret goes to a 0600 file before the
        // cluster exists (a crash in between bootstraps again, with a new token).
        bootstrapCommands: () => {
          const m = managementToken(Date.now());
          writeSecretFile(`${config.dataDir}/${MANAGEMENT_TOKEN_FILE}`, `${m.secret}\n`);
          managementSecret = m.secret;
          return [m.command];
        },
        snapshotEntries: config.snapshotEntries,
        snapshotKeepEntries: Math.max(8, Math.floor(config.snapshotEntries / 4)),
        clusterKey: { box: keyBox, dir: config.dataDir, inClear: !config.tls && config.dev },
        log: opts.log,
        ...(config.tls
          ? {
            tls: {
              dir: config.dataDir,
              certTtlMs: config.certTtlMs,
              ...(config.joinToken === null ? {} : { joinToken: config.joinToken }),
              ...(config.ca === null ? {} : { ca: config.ca }),
            },
          }
          : {}),
      });
    } catch (e) {
      store.close();
      dataDir.release();
      throw e;
    }
    const agent = new Agent(config, store, cluster, opts);
    agent.#httpTls = httpTls;
    agent.#keyBox = keyBox;
    agent.#stops.push(() => dataDir.release(), () => store.close(), () => cluster.close());
    try {
      await cluster.start();
      const show = (what: string, file: string, secret: string) =>
        (opts.out ?? console.log)(
          secretLine(
            what,
            `${config.dataDir}/${file}`,
            secret,
            opts.terminal ?? Deno.stdout.isTerminal(),
          ),
        );
      if (managementSecret !== undefined) {
        show("ACL management token", MANAGEMENT_TOKEN_FILE, managementSecret);
      }
      const joinToken = cluster.bootstrapToken;
      if (joinToken !== undefined) {
        const hours = BOOTSTRAP_TOKEN_TTL_MS / 3_600_000;
        show(`join token for new members (valid ${hours}h)`, JOIN_TOKEN_FILE, joinToken);
      }
      await agent.#startParts();
    } catch (e) {
      await agent.stop();
      throw e;
    }
    return agent;
  }

  async #startParts(): Promise<void> {
    const { config, store, cluster } = this;
    const propose = cluster.propose.bind(cluster);
    const log = this.#log;
    const probe = this.#loopProbe;
    if (probe !== undefined) {
      probe.start();
      this.#stops.push(() => probe.stop());
    }

    const dns = await startDns({
      config,
      store,
      onStop: (stop) => this.#stops.push(stop),
      onDrain: (drain) => this.#drains.push(drain),
      onReload: (reload) => this.#reloads.push(reload),
    });

    // TTL expiry and DeregisterCriticalServiceAfter of this node's registered checks; the API
    // tells it of every TTL report.
    const checkTimers = new CheckTimers({ store, propose, node: config.node, log });

    const explain = explainSources(() => proxy, () => watcher, config.proxyWorkers, cluster);
    const routes = () => proxy?.report() ?? null;
    const api = new ApiServer({
      onTtlReport: (id) => checkTimers.renew(id),
      store,
      cluster,
      node: config.node,
      advertise: config.advertise,
      version: VERSION,
      datacenter: config.datacenter,
      aclDefault: config.aclDefault,
      listen: config.http,
      tls: this.#httpTls,
      config: this.#shownConfig,
      routes,
      explain,
      extraMetrics: () => dataPlaneMetrics(dns, proxy),
      admin: clusterAdmin(cluster, () => this.#leave()),
      secrets: this.#keyBox,
      loopProbe: probe,
      heartbeatGaps: cluster.heartbeatGaps,
    });
    this.#stops.push(() => api.close());
    if (config.httpTls.mode === "auto") await this.#serveAutoTls(api);
    else await api.start();

    // Last of the listeners: a stored TCP route (berth.tcp.port) must never take the port of
    // one of the agent's own; one that names such a port is refused and shown failed.
    let proxy: ProxyFront | null = null;
    let watcher: DockerWatcher | null = null;
    answerExplainQueries(cluster, explain, routes);
    if (config.proxyHttp !== null || config.proxyHttps !== null) {
      proxy = await startProxy({
        config,
        store,
        keyBox: this.#keyBox,
        log,
        onStop: (stop) => this.#stops.push(stop),
        onDrain: (drain) => this.#drains.push(drain),
        onReopen: (reopen) => this.#reopens.push(reopen),
        reserved: [
          { what: "api", ...api.address },
          { what: "dns", ...config.dns },
          ...(config.proxyHttp === null ? [] : [{ what: "proxy", ...config.proxyHttp }]),
          ...(config.proxyHttps === null ? [] : [{ what: "proxy-https", ...config.proxyHttps }]),
          { what: "cluster", ...cluster.bound },
        ],
      });
    }

    this.#startAcme(proxy);

    const health = new HealthChecker({ store, propose, node: config.node, log });
    health.start();
    this.#stops.push(() => health.close());
    this.#writers.push(() => health.close());
    checkTimers.start();
    this.#stops.push(() => Promise.resolve(checkTimers.close()));
    this.#writers.push(() => Promise.resolve(checkTimers.close()));

    if (config.docker !== null) {
      const w = new DockerWatcher({
        store,
        propose,
        node: config.node,
        advertise: config.advertise,
        internal: config.internal,
        exposeByDefault: config.exposeByDefault,
        dockerUrl: config.docker,
        edgeDomain: config.edgeDomain,
        reconcileIntervalMs: config.reconcileIntervalMs,
        log,
      });
      watcher = w;
      await w.start();
      this.#stops.push(() => w.close());
      this.#writers.push(() => w.close());
    }

    log(
      `berth ${VERSION}: node ${config.node} up; api ${api.scheme}://${
        formatHostPort(api.address)
      }, ` +
        `dns ${formatHostPort(config.dns)} (${dns.note}), ${proxyNote(config)}, docker ${
          config.docker ?? "off"
        }, data ${config.dataDir}`,
    );
  }

  /**
   * The ACME orders (README "ACME"), run by this member while it leads. HTTP-01 when the plain
   * proxy listens, else TLS-ALPN-01; without a proxy listener there is nothing to answer with.
   * The names are the hosts of the proxy's route table.
   */
  #startAcme(proxy: ProxyFront | null): void {
    const { config, store, cluster } = this;
    if (proxy === null) return;
    const caCerts = config.acme.caCerts;
    const acme = new AcmeManager({
      store,
      node: config.node,
      leaderTerm: () => cluster.leaderTerm(),
      propose: (cmd) => cluster.proposeAsLeader(cmd),
      box: this.#keyBox,
      directoryUrl: config.acme.directory,
      email: config.acme.email,
      names: acmeNamesOf(() => proxy.table, {
        all: config.acme.all,
        domains: config.acme.domains,
      }),
      challengeType: config.proxyHttp !== null ? "http-01" : "tls-alpn-01",
      edgeSilence: () => silentEdgeMember(store.nodes(), cluster.members()),
      api: (o) => new AcmeClient({ ...o, ...(caCerts === null ? {} : { caCerts }) }),
      csr: (name, keyPem) => csr([name], keyPem),
      log: this.#log,
    });
    acme.start();
    this.#stops.push(() => acme.close());
    this.#writers.push(() => acme.close());
  }

  /** `--http-tls auto`: the API over https with a certificate from the cluster CA (auto_tls.ts). */
  async #serveAutoTls(api: ApiServer): Promise<void> {
    const { config, store, cluster } = this;
    const auto = new AutoTls({
      ca: () => store.pki.ca(),
      clusterId: () => cluster.identity()?.clusterId,
      node: config.node,
      http: config.http,
      advertise: config.advertise,
      ttlMs: config.certTtlMs,
    });
    const serving = await serveAutoTls(auto, {
      start: async (tls) => {
        await api.setTls(tls);
        await api.start();
      },
      renew: (tls) => api.setTls(tls),
      subscribe: (fn) => store.subscribe(fn),
      log: this.#log,
      onFatal: (e) => {
        this.#log(`berth: ${errorText(e)}; stopping`);
        this.#onExit(1);
      },
    });
    this.#stops.push(() => serving.stop());
  }

  /**
   * `berth leave`: deregisters this node's instances, marks the node down, leaves the Raft
   * cluster (handing off leadership first), then stops the agent.
   */
  async #leave(): Promise<void> {
    // Nothing may register anew while this node leaves.
    for (const stop of this.#writers.splice(0)) await stop();
    const own = this.store.instancesOfNode(this.config.node);
    await this.cluster.propose({
      type: "batch",
      commands: [
        ...own.map((i) => ({ type: "deregister" as const, id: i.id })),
        { type: "node.status", name: this.config.node, status: "down" },
      ],
    });
    await this.cluster.leave();
    this.#log(`berth: ${this.config.node} left the cluster; stopping`);
    setTimeout(() => this.#onExit(0), 100);
  }

  /** SIGTERM: proxy and DNS stop accepting and finish, for up to `--drain-timeout`; then stop(). */
  async drain(): Promise<void> {
    const drains = this.#drains.splice(0);
    if (drains.length > 0) await drainParts(drains, this.#config.drainTimeoutMs, this.#log);
  }

  /** SIGHUP: takes over the reloadable settings of `fresh` (the config read again). */
  async reload(fresh: Config): Promise<void> {
    const next = await reloadParts(this.#config, fresh, this.#reloads, this.#log);
    if (next === this.#config) return;
    this.#config = next;
    Object.assign(this.#shownConfig, publicConfig(next));
  }

  /** SIGUSR1: opens the access log file again (after a rotation moved it away). */
  reopenLogs(): Promise<void> {
    return reopenLogs(this.#reopens, this.#config.accessLog, this.#log);
  }

  /** Stops every part in reverse start order. Safe to call twice. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const stops = this.#stops.reverse();
    this.#stops = [];
    for (const stop of stops) {
      try {
        await stop();
      } catch (e) {
        this.#log(`berth: error while stopping: ${errorText(e)}`);
      }
    }
  }
}

/**
 * The consensus operations behind the admin API (join, leave, raft). `leave`
 * is the agent's own (it stops the writers first).
 */
export function clusterAdmin(cluster: RaftCluster, leave: () => Promise<void>): ClusterAdmin {
  return {
    join: (address) => cluster.join([address]),
    leave,
    transferLeader: (node) => cluster.transferLeader(node),
    removePeer: (node) => cluster.removePeer(node),
  };
}

function publicConfig(c: Config): Record<string, unknown> {
  return {
    ...c,
    dnsServiceTtl: Object.fromEntries(c.dnsServiceTtl), // a Map would show as {}
    joinToken: c.joinToken === null ? null : "<redacted>",
    ca: c.ca === null ? null : "<given>",
    acme: { ...c.acme, caCerts: c.acme.caCerts === null ? null : `${c.acme.caCerts.length} given` },
  };
}

/** `berth agent`: runs until SIGINT or SIGTERM. Returns the process exit code. */
export async function runAgent(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(agentHelp());
    return 0;
  }
  let config: Config;
  try {
    config = loadConfig(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`berth agent: ${e.message}`);
      return 2;
    }
    throw e;
  }
  // Every connection and UDP flow is a file descriptor: the soft limit goes up to the hard one.
  const fds = openFileLimit();
  if (fds !== null && fds.soft < fds.hard) {
    const raised = raiseOpenFileLimit();
    if ("why" in raised) {
      console.error(`berth agent: open-file limit stays at ${fds.soft}: ${raised.why}`);
    }
  }
  // A signal's name, or null when the agent stops by itself (it has logged why).
  const { promise, resolve } = Promise.withResolvers<string | null>();
  // A second SIGINT/SIGTERM while the first drains: stop without waiting for the drain.
  const again = Promise.withResolvers<string>();
  let stopping = false;
  let exitCode = 0;
  let agent: Agent;
  try {
    agent = await Agent.start(config, {
      onExit: (code) => {
        exitCode = code;
        stopping = true;
        resolve(null);
      },
    });
  } catch (e) {
    console.error(`berth agent: cannot start: ${errorText(e)}`);
    return 1;
  }
  const onSignal = (name: string) => () => {
    if (stopping) return again.resolve(name);
    stopping = true;
    resolve(name);
  };
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGINT", onSignal("SIGINT")],
    ["SIGTERM", onSignal("SIGTERM")],
    ["SIGHUP", () => void reloadConfig(agent, argv)],
    ["SIGUSR1", () => void agent.reopenLogs()],
  ];
  for (const [sig, fn] of handlers) Deno.addSignalListener(sig, fn);
  const signal = await promise;
  if (signal !== null) console.error(`berth: ${signal}, stopping`);
  // After a signal or `berth leave` the data plane drains first; a member that had to stop
  // (exit 1) stops at once.
  if (signal !== null || exitCode === 0) {
    const cut = await Promise.race([agent.drain().then(() => null), again.promise]);
    if (cut !== null) console.error(`berth: ${cut} again, stopping without waiting for the drain`);
  }
  for (const [sig, fn] of handlers) Deno.removeSignalListener(sig, fn);
  await agent.stop();
  return exitCode;
}
