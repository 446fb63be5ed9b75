/**
 * The composition root: builds every part of a berth agent from one Config and starts and stops
 * them in order. The only module that knows all parts.
 *
 * Start order (each part only needs those before it): store → cluster → this node's record →
 * DNS, proxy, API (readers of the store) → health checker and Docker watcher (writers).
 * Stop order is the reverse, so no writer proposes into a closed cluster.
 *
 * @module
 */
import { ApiServer } from "./api/mod.ts";
import { type Cluster, LocalCluster } from "./cluster/mod.ts";
import { agentHelp, type Config, ConfigError, formatHostPort, loadConfig } from "./config.ts";
import { DnsServer } from "./dns/mod.ts";
import { DockerWatcher } from "./docker/mod.ts";
import { HealthChecker } from "./health/mod.ts";
import { HttpProxy } from "./proxy/mod.ts";
import { Store } from "./store/mod.ts";
import { VERSION } from "./version.ts";

export interface AgentOptions {
  log?: (line: string) => void;
}

export class Agent {
  readonly config: Config;
  readonly store: Store;
  readonly cluster: Cluster;
  readonly #log: (line: string) => void;
  #stops: (() => Promise<void> | void)[] = [];

  private constructor(config: Config, store: Store, cluster: Cluster, log: (s: string) => void) {
    this.config = config;
    this.store = store;
    this.cluster = cluster;
    this.#log = log;
  }

  /** Starts every part; on a failure, stops what had started and rethrows. */
  static async start(config: Config, opts: AgentOptions = {}): Promise<Agent> {
    const log = opts.log ?? ((line: string) => console.error(line));
    Deno.mkdirSync(config.dataDir, { recursive: true });
    const store = Store.open(`${config.dataDir}/store.db`);
    const cluster = new LocalCluster(store, {
      node: config.node,
      address: formatHostPort(config.bind),
    });
    const agent = new Agent(config, store, cluster, log);
    agent.#stops.push(() => store.close(), () => cluster.close());
    try {
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

    await propose({
      type: "node.register",
      name: config.node,
      address: config.advertise,
      meta: {
        proxy: config.proxyHttp === null ? "false" : "true",
        "berth-version": VERSION,
      },
    });
    await propose({ type: "node.status", name: config.node, status: "alive" });

    const dns = new DnsServer({
      store,
      listen: config.dns,
      domain: config.domain,
      edgeDomain: config.edgeDomain,
      ttl: config.dnsTtl,
      recursors: config.recursor,
    });
    await dns.start();
    this.#stops.push(() => dns.close());

    if (config.proxyHttp !== null) {
      const proxy = new HttpProxy({
        store,
        listen: config.proxyHttp,
        edgeDomain: config.edgeDomain,
      });
      await proxy.start();
      this.#stops.push(() => proxy.close());
    }

    const api = new ApiServer({
      store,
      cluster,
      node: config.node,
      advertise: config.advertise,
      version: VERSION,
      token: config.token,
      listen: config.http,
      config: publicConfig(config),
    });
    await api.start();
    this.#stops.push(() => api.close());

    const health = new HealthChecker({ store, propose, node: config.node, log });
    health.start();
    this.#stops.push(() => health.close());

    if (config.docker !== null) {
      const watcher = new DockerWatcher({
        store,
        propose,
        node: config.node,
        advertise: config.advertise,
        internal: config.internal,
        dockerUrl: config.docker,
        edgeDomain: config.edgeDomain,
        reconcileIntervalMs: config.reconcileIntervalMs,
        log,
      });
      await watcher.start();
      this.#stops.push(() => watcher.close());
    }

    log(
      `berth ${VERSION}: node ${config.node} up; api http://${formatHostPort(config.http)}, ` +
        `dns ${formatHostPort(config.dns)}, proxy ${
          config.proxyHttp ? formatHostPort(config.proxyHttp) : "off"
        }, docker ${config.docker ?? "off"}, data ${config.dataDir}`,
    );
  }

  /** Stops every part in reverse start order. Safe to call twice. */
  async stop(): Promise<void> {
    const stops = this.#stops.reverse();
    this.#stops = [];
    for (const stop of stops) {
      try {
        await stop();
      } catch (e) {
        this.#log(`berth: error while stopping: ${(e as Error).message}`);
      }
    }
  }
}

function publicConfig(c: Config): Record<string, unknown> {
  return { ...c, token: c.token === null ? null : "<redacted>" };
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
  let agent: Agent;
  try {
    agent = await Agent.start(config);
  } catch (e) {
    console.error(`berth agent: cannot start: ${(e as Error).message}`);
    return 1;
  }
  const { promise, resolve } = Promise.withResolvers<string>();
  const onSignal = (name: string) => () => resolve(name);
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGINT", onSignal("SIGINT")],
    ["SIGTERM", onSignal("SIGTERM")],
  ];
  for (const [sig, fn] of handlers) Deno.addSignalListener(sig, fn);
  const signal = await promise;
  console.error(`berth: ${signal}, stopping`);
  for (const [sig, fn] of handlers) Deno.removeSignalListener(sig, fn);
  await agent.stop();
  return 0;
}
