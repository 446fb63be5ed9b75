/**
 * Asking other members for what only they know, for `/v1/berth/explain`: their proxy's
 * ejections and a container that runs there. The question travels over the cluster transport
 * (mutual TLS between members, to the cluster address of the member's own Raft record:
 * RaftCluster.ask), never over HTTP and never with the caller's token: the asked member answers
 * plain data from its own view (`answerPeerQuery`), and the asking member applies the caller's
 * ACL to what it shows (explain.ts). Every question is bounded by PEER_TIMEOUT_MS; a member that
 * does not answer or refuses is `unknown` with the reason, never waited for longer.
 *
 * @module
 */
import type { NodeInfo, Store } from "../store/mod.ts";
import { errorText } from "../lib/error_text.ts";
import type { RoutesView } from "./deps.ts";
import type { ContainerAnswer, PeerAsk, PeerQuery } from "./explain_sources.ts";
export type { ContainerAnswer, PeerAsk, PeerQuery };

/** Longest wait for another member's answer. */
export const PEER_TIMEOUT_MS = 2_000;
/** Most members asked for one explanation (the others are listed as not asked). */
export const PEERS_ASKED_MAX = 32;
/** Most instance ids in one ejections question. */
export const PEER_QUERY_IDS_MAX = 4_096;
/** Longest instance id or container name in a question. */
export const PEER_QUERY_CHARS_MAX = 512;

/** What one member's proxy says of a service's instances. */
export interface MemberEjections {
  member: string;
  /** `answered`: `ejected` is its list; `unknown`: see `error`; `no-proxy`: it runs none. */
  state: "answered" | "unknown" | "no-proxy";
  ejected: { instance: string; untilMs: number }[];
  error: string | null;
}

/** What answers a question on the asked member: its own proxy and Docker watcher. */
export interface PeerQuerySources {
  routes: () => RoutesView | null | Promise<RoutesView | null>;
  container?: (query: string) => ContainerAnswer | Promise<ContainerAnswer>;
}

/**
 * The answer to another member's question (from the network: checked here; a malformed one
 * throws one line, sent back as the refusal). No ACL here: the asking member applies its
 * caller's rights to the answer.
 */
export async function answerPeerQuery(
  q: Record<string, unknown>,
  s: PeerQuerySources,
): Promise<unknown> {
  const short = (v: unknown) =>
    typeof v === "string" && v !== "" && v.length <= PEER_QUERY_CHARS_MAX;
  if (q.q === "ejections") {
    const ids = q.instances;
    if (!Array.isArray(ids) || ids.length > PEER_QUERY_IDS_MAX || !ids.every(short)) {
      throw new Error("malformed ejections query");
    }
    const view = await s.routes();
    const asked = new Set(ids as string[]);
    return {
      proxy: view !== null,
      ejected: (view?.ejected ?? []).filter((e) => asked.has(e.instance))
        .map((e) => ({ instance: e.instance, untilMs: e.untilMs })),
    };
  }
  if (q.q === "container") {
    if (!short(q.query)) throw new Error("malformed container query");
    return await s.container?.(q.query as string) ??
      { error: "the Docker watcher is off on this member" };
  }
  throw new Error("unknown query");
}

/** Members in name order. */
function byName(a: NodeInfo, b: NodeInfo): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Every other member's proxy ejections of `instances` (asked at once, each time-bounded):
 * members without a proxy are `no-proxy`, down ones and those that fail `unknown`.
 */
export async function peerEjections(
  ask: PeerAsk,
  nodes: readonly NodeInfo[],
  self: string,
  instances: ReadonlySet<string>,
): Promise<MemberEjections[]> {
  const others = nodes.filter((n) => n.name !== self).sort(byName);
  const query: PeerQuery = { q: "ejections", instances: [...instances] };
  return await Promise.all(others.map(async (n, i): Promise<MemberEjections> => {
    const base = { member: n.name, ejected: [], error: null };
    if (i >= PEERS_ASKED_MAX) {
      return { ...base, state: "unknown", error: `not asked (over ${PEERS_ASKED_MAX} members)` };
    }
    if (n.status === "down") return { ...base, state: "unknown", error: "the member is down" };
    try {
      const r = await ask(n.name, query) as { proxy?: unknown; ejected?: unknown };
      if (r?.proxy === false) return { ...base, state: "no-proxy" };
      const list = Array.isArray(r?.ejected) ? r.ejected : [];
      const ejected = list
        .filter((e): e is { instance: string; untilMs: number } =>
          typeof e?.instance === "string" && typeof e?.untilMs === "number" &&
          instances.has(e.instance)
        )
        .map((e) => ({ instance: e.instance, untilMs: e.untilMs }));
      return { ...base, state: "answered", ejected };
    } catch (e) {
      return { ...base, state: "unknown", error: errorText(e) };
    }
  }));
}

/** One member's answer about a container, or why there is none. */
export interface PeerContainer {
  member: string;
  /** The watcher's view or its reason (`error`: the member does not run it). */
  answer: ContainerAnswer | null;
  /** Why the member could not be asked (answer null). */
  failure: string | null;
}

/** Whether a member's answer has the shape of a container answer. */
function isContainerAnswer(v: unknown): v is ContainerAnswer {
  const a = v as Record<string, unknown> | null;
  if (typeof a !== "object" || a === null) return false;
  if (typeof a.error === "string") return true;
  const c = a.container as Record<string, unknown> | null;
  return typeof a.seenAgoMs === "number" && typeof c === "object" && c !== null &&
    Array.isArray(c.instances);
}

/** Asks `members` (other than `self`, not down, at most PEERS_ASKED_MAX by name) at once. */
export async function peerContainers(
  ask: PeerAsk,
  members: readonly NodeInfo[],
  self: string,
  query: string,
): Promise<PeerContainer[]> {
  const others = members.filter((n) => n.name !== self && n.status !== "down").sort(byName)
    .slice(0, PEERS_ASKED_MAX);
  return await Promise.all(others.map(async (n): Promise<PeerContainer> => {
    try {
      const a = await ask(n.name, { q: "container", query });
      if (!isContainerAnswer(a)) throw new Error("its answer is malformed");
      return { member: n.name, answer: a, failure: null };
    } catch (e) {
      return { member: n.name, answer: null, failure: errorText(e).split("\n")[0]!.slice(0, 200) };
    }
  }));
}

/** The node records of the current Raft members (the only nodes explain asks). */
export function memberNodes(store: Pick<Store, "members" | "nodes">): NodeInfo[] {
  const names = new Set(store.members().map((m) => m.name));
  return store.nodes().filter((n) => names.has(n.name));
}

/** A label (or API Meta value) a service's container had rejected, from the member running it. */
export interface RejectedLabel {
  member: string;
  container: string;
  label: string;
  message: string;
}

/** Most containers asked for their rejected labels in one service explanation. */
export const REJECTED_CONTAINERS_MAX = 32;

/**
 * The rejected labels of the containers behind `instances` (Docker ones: `containerId` set),
 * each asked of the member that runs it (this one through `local`, the others over `ask`);
 * a container that cannot be asked is one line saying why.
 */
export async function rejectedLabels(
  instances: readonly { node: string; containerId: string | null; meta: Record<string, string> }[],
  self: string,
  local: ((query: string) => ContainerAnswer | Promise<ContainerAnswer>) | undefined,
  ask: PeerAsk | undefined,
  nodes: readonly NodeInfo[],
): Promise<RejectedLabel[]> {
  const containers = new Map<string, { node: string; name: string }>();
  for (const i of instances) {
    if (i.containerId === null || containers.size >= REJECTED_CONTAINERS_MAX) continue;
    containers.set(i.containerId, { node: i.node, name: i.meta.container ?? i.containerId });
  }
  const lists = await Promise.all([...containers].map(async ([id, c]) => {
    let a: ContainerAnswer | null;
    let failure: string | null = null;
    if (c.node === self) {
      a = await local?.(id) ?? { error: "the Docker watcher is off on this member" };
    } else {
      const n = nodes.find((m) => m.name === c.node);
      const got = ask === undefined || n === undefined
        ? []
        : await peerContainers(ask, [n], self, id);
      a = got[0]?.answer ?? null;
      failure = got[0]?.failure ?? (got.length === 0 ? "cannot be asked" : null);
    }
    const base = { member: c.node, container: c.name };
    if (a !== null && "container" in a) {
      return a.container.problems.map((p) => ({ ...base, label: p.label, message: p.message }));
    }
    const why = a !== null ? a.error : failure ?? "no answer";
    return [{ ...base, label: "", message: `its labels are unknown: ${why}` }];
  }));
  return lists.flat();
}
