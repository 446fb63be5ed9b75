/**
 * # docker — registrations from the local Docker engine
 *
 * Turns this node's running containers into service instances and keeps the store equal to
 * them: on start, on container events (debounced 25 ms), on reconnect and every
 * `reconcileIntervalMs`, it computes the complete desired set (a pure function of the
 * containers' inspect data, see desired.ts) and proposes the difference in batches of at most
 * RECONCILE_BATCH_MAX (64) commands, one after the other. It only touches this node's Docker
 * rows (`containerId` set, kept from the change feed: own_rows.ts), never API registrations or
 * other nodes.
 *
 * Labels and env: one table, LABELS in labels.ts (key, parser, doc, default and fallback per
 * label; the README's label table lists the same rows). Registrator's `SERVICE_*` names work as
 * labels or env (labels win); `berth.*` are labels. A bad value is logged once per container and
 * label, and the label's default is used. What a value may be is the store's rules.
 *
 * Health: Docker's HEALTHCHECK decides (healthy or none → passing; starting, unhealthy, paused,
 * restarting → critical). A `kill` event marks the instances critical at once. Instances with an
 * active check start critical "awaiting first check" and keep the health checker's status after
 * that (see reconcile.ts).
 *
 * Options (WatcherOptions): `store`, `propose`, `node`, `advertise`, `internal`, `dockerUrl`
 * (`unix:///var/run/docker.sock` or `http://host:port`), `edgeDomain`, `reconcileIntervalMs`,
 * `log`.
 *
 * @example
 * ```ts
 * const watcher = new DockerWatcher({
 *   store, propose: (c) => cluster.propose(c), node: "h1", advertise: "10.0.0.5",
 *   internal: false, dockerUrl: "unix:///var/run/docker.sock", edgeDomain: null,
 *   reconcileIntervalMs: 30_000,
 * });
 * await watcher.start(); // docker run -d -p 80 -e SERVICE_NAME=web nginx → web.service.berth
 * await watcher.close();
 * ```
 *
 * @module
 */
export type { ContainerInfo } from "./container.ts";
export {
  containerInstances,
  type Desired,
  desiredInstances,
  type DesiredOptions,
  type Skip,
} from "./desired.ts";
export { dockerEngine, type DockerEvent, type Engine } from "./engine.ts";
export { LABEL_SPECS, LABELS, type LabelSpec, type Problem } from "./labels.ts";
export {
  type InstanceReader,
  type Plan,
  planReconcile,
  RECONCILE_BATCH_MAX,
  storeReader,
  toBatches,
} from "./reconcile.ts";
export { DockerWatcher, type WatcherOptions } from "./watcher.ts";
export type { ContainerExplain, PortExplain } from "./explain_container.ts";
