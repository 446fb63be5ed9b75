/**
 * DockerWatcher: keeps this node's registrations equal to what its running containers ask for
 * (reconcile, don't react: every trigger runs the same full reconcile, reconcile.ts, instead of
 * patching the store from the event). It reconciles on start, on relevant container events
 * (debounced by EVENT_DEBOUNCE_MS), on reconnecting to the engine and every
 * `reconcileIntervalMs`; reconciles run one at a time. A `kill` event takes the container's
 * instances out of service at once, before the reconcile that follows.
 *
 * While the engine is unreachable it logs once, keeps the store as it is (nothing is
 * deregistered) and retries with exponential backoff up to BACKOFF_MAX_MS.
 *
 * @module
 */
import type { Command, Store } from "../store/mod.ts";
import type { Proposed } from "../cluster/types.ts";
import { desiredInstances, type DesiredOptions, type Skip } from "./desired.ts";
import type { ContainerInfo } from "./container.ts";
import {
  type ContainerExplain,
  explainContainer,
  explainInspected,
  findContainer,
} from "./explain_container.ts";
import type { Problem } from "./labels.ts";
import { dockerEngine, type DockerEvent, type Engine } from "./engine.ts";
import { LogOnce } from "./log_once.ts";
import { planReconcile, toBatches } from "./reconcile.ts";
import { OwnRows } from "./own_rows.ts";
import { errorText } from "../lib/error_text.ts";

/** Delay that gathers a burst of events into one reconcile. */
export const EVENT_DEBOUNCE_MS = 25;
/** First retry delay after the engine could not be reached; doubles up to BACKOFF_MAX_MS. */
export const BACKOFF_MIN_MS = 250;
export const BACKOFF_MAX_MS = 10_000;
/** Retry delay after a proposal failed (no leader, cluster closing). */
export const PROPOSE_RETRY_MS = 1_000;
/** How long a container that got a stop signal is held out of service while still running. */
export const STOPPING_HOLD_MS = 10 * 60_000;
/** Most containers remembered as being stopped. */
export const STOPPING_MAX = 4096;
/** Most problems kept per container for `explain` (the latest reconcile's, in order). */
export const PROBLEMS_KEPT_MAX = 32;

/** Events after which the desired set may differ. */
const RELEVANT_ACTIONS = new Set([
  "start",
  "restart",
  "die",
  "stop",
  "kill",
  "destroy",
  "health_status",
  "pause",
  "unpause",
  "rename",
  "update",
  "oom",
]);
/** Signals (numbers and names, as engines report them) that stop a container. */
const STOP_SIGNALS = new Set([
  "2",
  "3",
  "6",
  "9",
  "15",
  "SIGINT",
  "SIGQUIT",
  "SIGABRT",
  "SIGKILL",
  "SIGTERM",
  "INT",
  "QUIT",
  "ABRT",
  "KILL",
  "TERM",
]);

export interface WatcherOptions {
  /** Read for this node's current instances (`store.instancesOfNode(node)`). */
  store: Store;
  /** Commits a command through the cluster. */
  propose: (cmd: Command) => Promise<Proposed>;
  /** This node's name; instance ids start with it. */
  node: string;
  /** IP registered for ports published on 0.0.0.0 / :: and for host networking. */
  advertise: string;
  /** Register container IP + container port instead of published host ports. */
  internal: boolean;
  /** False: only containers labelled `berth.enable=true` or with `SERVICE_NAME` (ports: `SERVICE_<port>_NAME`). Default true. */
  exposeByDefault?: boolean;
  /** `unix:///var/run/docker.sock`, `http://host:port` or `tcp://host:port`. */
  dockerUrl: string;
  /** When set, `NAME.<edgeDomain>` is each TCP instance's default HTTP host. */
  edgeDomain: string | null;
  /** Period of the full reconcile that runs even without events. */
  reconcileIntervalMs: number;
  /** Where log lines go (default: console.error). */
  log?: (line: string) => void;
  /** The engine; default: dockerode at `dockerUrl`. For tests. */
  engine?: Engine;
  /** Clock (ms); default Date.now. */
  now?: () => number;
}

type Timer = ReturnType<typeof setTimeout>;

export class DockerWatcher {
  readonly #o: WatcherOptions;
  readonly #engine: Engine;
  readonly #log: (line: string) => void;
  readonly #once: LogOnce;
  readonly #now: () => number;
  /** Container id → when it got a stop signal. */
  readonly #stopping = new Map<string, number>();
  #connected: boolean | null = null;
  #closed = false;
  #started = false;
  #backoffMs = BACKOFF_MIN_MS;
  #closeEvents: (() => void) | null = null;
  #connectTimer: Timer | null = null;
  #debounceTimer: Timer | null = null;
  #retryTimer: Timer | null = null;
  #interval: ReturnType<typeof setInterval> | null = null;
  #inflight: Promise<void> | null = null;
  #queued: Promise<void> | null = null;
  #connecting: Promise<void> | null = null;
  #eventsOpenedAt = 0;
  /** This node's Docker rows, kept from the change feed while started. */
  #own: OwnRows | null = null;
  /**
   * The latest reconcile's containers, options and problems by container id (for `explain`;
   * bounded by the engine's list and PROBLEMS_KEPT_MAX).
   */
  #seen: {
    containers: ContainerInfo[];
    options: DesiredOptions;
    problems: Map<string, Problem[]>;
    /** Skips only the whole list sees (an instance id another container took), by container. */
    skipped: Map<string, Skip[]>;
    atMs: number;
  } | null = null;
  /** Why the latest registration did not go through, or null (for `explain`). */
  #proposeError: string | null = null;
  #unsubscribe: (() => void) | null = null;

  /** Throws only for a malformed `dockerUrl` (config validates it first). */
  constructor(o: WatcherOptions) {
    this.#o = o;
    this.#engine = o.engine ?? dockerEngine(o.dockerUrl);
    this.#log = o.log ?? ((line) => console.error(line));
    this.#once = new LogOnce(this.#log);
    this.#now = o.now ?? Date.now;
  }

  /**
   * Connects to the engine, opens the event stream and runs the first reconcile. Never throws:
   * an unreachable engine is logged once and retried in the background.
   */
  async start(): Promise<void> {
    if (this.#started || this.#closed) return;
    this.#started = true;
    const own = new OwnRows(this.#o.store, this.#o.node);
    this.#own = own;
    this.#unsubscribe = this.#o.store.subscribe((c) => own.apply(c));
    this.#interval = setInterval(() => void this.reconcileNow(), this.#o.reconcileIntervalMs);
    await this.#connect();
  }

  /**
   * Runs a full reconcile and resolves when it is done. A call during a running reconcile
   * schedules exactly one more (shared by every caller meanwhile).
   */
  reconcileNow(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#queued !== null) return this.#queued;
    const run = (): Promise<void> => {
      const p = this.#reconcileOnce().finally(() => {
        if (this.#inflight === p) this.#inflight = null;
      });
      this.#inflight = p;
      return p;
    };
    if (this.#inflight === null) return run();
    const q = this.#inflight.then(() => {
      this.#queued = null;
      return this.#closed ? undefined : run();
    });
    this.#queued = q;
    return q;
  }

  /**
   * `berth explain CONTAINER` on this member: the container `query` names (name or id prefix)
   * as the latest reconcile saw it, with the problems that reconcile found (logged only once),
   * and how long ago that was. `error` when the watcher has not listed yet or none matches.
   */
  explain(
    query: string,
  ): { container: ContainerExplain; seenAgoMs: number } | { error: string } {
    const seen = this.#seen;
    if (seen === null) {
      return { error: "the Docker watcher has not listed the engine's containers yet" };
    }
    const c = findContainer(seen.containers, query);
    if (typeof c === "string") return { error: c };
    if (c.State?.Running === false) {
      // Listed while it ran, inspected after it stopped: explained as the stopped one it is.
      return {
        container: explainInspected(c, seen.options, this.#now()),
        seenAgoMs: Math.max(0, this.#now() - seen.atMs),
      };
    }
    return {
      container: explainContainer(c, seen.options, seen.problems.get(c.Id) ?? [], {
        skipped: seen.skipped.get(c.Id) ?? [],
        proposeError: this.#proposeError,
      }),
      seenAgoMs: Math.max(0, this.#now() - seen.atMs),
    };
  }

  /**
   * `explain`, and for a container not among the running ones, the engine's record of it in
   * any state (exited, created, dead, …: the usual reason a container is not routed). An
   * engine that cannot be asked leaves `explain`'s answer with the reason added.
   */
  async explainAny(
    query: string,
  ): Promise<{ container: ContainerExplain; seenAgoMs: number } | { error: string }> {
    const found = this.explain(query);
    const seen = this.#seen;
    if ("container" in found || seen === null || this.#engine.inspect === undefined) return found;
    const q = query.startsWith("/") ? query.slice(1) : query;
    // The engine matches names exactly and ids by any unique prefix: keep to explain's forms.
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/.test(q)) return found;
    let c: ContainerInfo | null;
    try {
      c = await this.#engine.inspect(q);
    } catch (e) {
      return { error: `${found.error} (the engine could not be asked: ${errorText(e)})` };
    }
    const name = c === null ? null : c.Name.replace(/^\//, "");
    const byId = /^[0-9a-f]{4,64}$/i.test(q) && c?.Id.toLowerCase().startsWith(q.toLowerCase());
    if (c === null || (name !== q && !byId)) {
      return { error: found.error.replace("no running container", "no container") };
    }
    return { container: explainInspected(c, seen.options, this.#now()), seenAgoMs: 0 };
  }

  /** Stops timers and the event stream; waits for a running reconcile. Leaves the store as is. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const t of [this.#connectTimer, this.#debounceTimer, this.#retryTimer]) {
      if (t !== null) clearTimeout(t);
    }
    if (this.#interval !== null) clearInterval(this.#interval);
    this.#connectTimer =
      this.#debounceTimer =
      this.#retryTimer =
      this.#interval =
        null;
    this.#closeEvents?.();
    this.#closeEvents = null;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    await this.#connecting?.catch(() => {});
    await this.#queued?.catch(() => {});
    await this.#inflight?.catch(() => {});
  }

  // ---- connection ----

  #connect(): Promise<void> {
    this.#connecting ??= this.#connectOnce().finally(() => this.#connecting = null);
    return this.#connecting;
  }

  async #connectOnce(): Promise<void> {
    if (this.#closed) return;
    try {
      const close = await this.#engine.events(
        (e) => this.#onEvent(e),
        (err) => this.#onEventsEnd(err),
      );
      if (this.#closed) {
        close();
        return;
      }
      this.#closeEvents = close;
      this.#eventsOpenedAt = this.#now();
    } catch (e) {
      this.#unreachable(e);
      return;
    }
    // Opened before listing, so no event between the list and the stream is missed.
    await this.reconcileNow();
  }

  #onEventsEnd(err: Error | null): void {
    this.#closeEvents = null;
    if (this.#closed) return;
    // A stream that lived a while ended normally (engine restart, proxy timeout): reconnect
    // promptly; one that keeps ending at once backs off.
    if (this.#now() - this.#eventsOpenedAt >= BACKOFF_MAX_MS) this.#backoffMs = BACKOFF_MIN_MS;
    this.#once.log(
      `events-ended:${err?.message ?? ""}`,
      `docker: event stream ended${err ? ` (${err.message})` : ""}; reconnecting`,
    );
    this.#scheduleConnect();
  }

  #unreachable(e: unknown): void {
    if (this.#closed) return;
    if (this.#connected !== false) {
      this.#log(`docker: cannot reach ${this.#o.dockerUrl}: ${errorText(e)}; retrying`);
    }
    this.#connected = false;
    this.#closeEvents?.();
    this.#closeEvents = null;
    this.#scheduleConnect();
  }

  #scheduleConnect(): void {
    if (this.#closed || this.#connectTimer !== null) return;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, BACKOFF_MAX_MS);
    this.#connectTimer = setTimeout(() => {
      this.#connectTimer = null;
      void this.#connect();
    }, delay);
  }

  #reachable(): void {
    if (this.#connected !== true) {
      this.#log(`docker: connected to ${this.#o.dockerUrl}`);
      this.#once.forgetPrefix("events-ended:");
    }
    this.#connected = true;
    this.#backoffMs = BACKOFF_MIN_MS;
  }

  // ---- events ----

  #onEvent(e: DockerEvent): void {
    if (this.#closed || !RELEVANT_ACTIONS.has(e.action)) return;
    if (e.action === "kill" && STOP_SIGNALS.has(e.attributes.signal ?? "15")) {
      this.#markStopping(e.id);
    } else if (["start", "restart", "unpause", "die", "destroy"].includes(e.action)) {
      this.#stopping.delete(e.id);
    }
    if (this.#debounceTimer === null) {
      this.#debounceTimer = setTimeout(() => {
        this.#debounceTimer = null;
        void this.reconcileNow();
      }, EVENT_DEBOUNCE_MS);
    }
  }

  /** Takes a container's instances out of service now (README: the proxy drops it at the `kill` event). */
  #markStopping(containerId: string): void {
    if (this.#stopping.size >= STOPPING_MAX && !this.#stopping.has(containerId)) {
      const oldest = this.#stopping.keys().next().value;
      if (oldest !== undefined) this.#stopping.delete(oldest);
    }
    this.#stopping.set(containerId, this.#now());
    const commands: Command[] = (this.#own?.ofContainer(containerId) ?? [])
      .filter((i) => i.docker?.state !== "stopping")
      .map((i) => ({ type: "docker", id: i.id, state: "stopping", detail: "" }));
    if (commands.length === 0) return;
    void this.#proposeAll(commands);
  }

  // ---- reconcile ----

  async #reconcileOnce(): Promise<void> {
    let containers;
    try {
      containers = await this.#engine.list();
    } catch (e) {
      this.#unreachable(e);
      return;
    }
    if (this.#closed) return;
    this.#reachable();

    const running = new Set(containers.map((c) => c.Id));
    const now = this.#now();
    for (const [id, at] of this.#stopping) {
      if (!running.has(id) || now - at > STOPPING_HOLD_MS) this.#stopping.delete(id);
    }

    const options: DesiredOptions = {
      node: this.#o.node,
      advertise: this.#o.advertise,
      internal: this.#o.internal,
      exposeByDefault: this.#o.exposeByDefault,
      edgeDomain: this.#o.edgeDomain,
      stopping: new Set(this.#stopping.keys()),
    };
    const desired = desiredInstances(containers, options);
    if (this.#own === null) return;
    const plan = planReconcile(desired.instances, this.#own, { node: this.#o.node });
    const problems = new Map<string, Problem[]>();
    for (const p of [...desired.problems, ...plan.problems]) {
      this.#once.log(
        `problem:${p.containerId}:${p.label}:${p.message}`,
        `docker: container ${p.container}: ${p.message}`,
      );
      let kept = problems.get(p.containerId);
      if (kept === undefined) problems.set(p.containerId, kept = []);
      if (kept.length < PROBLEMS_KEPT_MAX) kept.push(p);
    }
    // The skips containerInstances alone does not make (explain reads each container alone).
    const skipped = new Map<string, Skip[]>();
    for (const k of desired.skipped) {
      if (!/^port \S+: instance id /.test(k.reason)) continue;
      const kept = skipped.get(k.containerId) ?? [];
      if (kept.length < PROBLEMS_KEPT_MAX) kept.push(k);
      skipped.set(k.containerId, kept);
    }
    this.#seen = { containers, options, problems, skipped, atMs: now };
    if (plan.commands.length > 0) await this.#proposeAll(plan.commands);
    else this.#proposeError = null; // the store holds what the containers ask for
  }

  async #proposeAll(commands: Command[]): Promise<void> {
    for (const batch of toBatches(commands)) {
      if (this.#closed) return;
      try {
        const r = await this.#o.propose(batch);
        this.#once.forget("propose-failed");
        this.#proposeError = r.result.ok
          ? null
          : `the cluster rejected the latest registration batch (nothing applied): ${
            r.result.error ?? "no reason given"
          }`;
        if (!r.result.ok) {
          // A batch applies whole or not at all; the error names the sub-command that failed.
          this.#once.log(
            `rejected:${r.result.error ?? ""}`,
            `docker: the cluster rejected a registration batch (nothing applied): ` +
              `${r.result.error ?? "no reason given"}; reconciling again`,
          );
          this.#retryLater();
        }
      } catch (e) {
        if (this.#closed) return;
        this.#proposeError = `cannot propose the registrations: ${errorText(e)}`;
        this.#once.log("propose-failed", `docker: cannot propose: ${errorText(e)}; retrying`);
        this.#retryLater();
        return;
      }
    }
  }

  /** One reconcile PROPOSE_RETRY_MS from now (several requests meanwhile share it). */
  #retryLater(): void {
    if (this.#closed || this.#retryTimer !== null) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.reconcileNow();
    }, PROPOSE_RETRY_MS);
  }
}
