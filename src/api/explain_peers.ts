/**
 * Asking other members for what only they know, for `/v1/berth/explain`: their proxy's
 * ejections (GET /v1/berth/routes on each) and a container that runs there (GET
 * /v1/berth/explain?container=…&local). A member's API address is the `api` meta of its node
 * record (the agent registers it: src/agent.ts). Every question is bounded by
 * PEER_TIMEOUT_MS; a member that does not answer, answers an error or advertises no address is
 * `unknown` with the reason, never waited for longer.
 *
 * @module
 */
import type { NodeInfo, Store } from "../store/mod.ts";
import { parseHostPort } from "../lib/host_port.ts";
import { errorText } from "../lib/error_text.ts";

/** Longest wait for another member's answer. */
export const PEER_TIMEOUT_MS = 2_000;
/** Most members asked for one explanation (the others are listed as not asked). */
export const PEERS_ASKED_MAX = 32;
/** Largest answer read from a member. */
export const PEER_ANSWER_BYTES_MAX = 4 << 20;
/** The node meta key holding the member's API base URL (`http://10.0.0.5:8500`). */
export const API_META_KEY = "api";

/** Why a member could not answer; `status` when it answered with an error status. */
export class PeerError extends Error {
  override name = "PeerError";
  readonly status: number | null;

  constructor(message: string, status: number | null = null) {
    super(message);
    this.status = status;
  }
}

/** GET `path` on `node`'s API with the caller's token; resolves with the JSON, rejects with one line. */
export type PeerGet = (node: NodeInfo, path: string, token: string | undefined) => Promise<unknown>;

/** What one member's proxy says of a service's instances. */
export interface MemberEjections {
  member: string;
  /** `answered`: `ejected` is its list; `unknown`: see `error`; `no-proxy`: it runs none. */
  state: "answered" | "unknown" | "no-proxy";
  ejected: { instance: string; untilMs: number }[];
  error: string | null;
}

/** A PeerGet over fetch; https members are trusted by the cluster CA (store) when it has one. */
export function peerGetter(
  store: Pick<Store, "pki" | "members">,
  fetchFn: typeof fetch = fetch,
): PeerGet {
  return async (node, path, token) => {
    const base = node.meta[API_META_KEY];
    if (base === undefined || !/^https?:\/\/[^/]+$/.test(base)) {
      throw new PeerError("it advertises no API address");
    }
    const member = store.members().find((m) => m.name === node.name);
    if (member === undefined) throw new PeerError("it is not a cluster member");
    if (!sameHost(base, member.address)) {
      throw new PeerError(
        `its API address ${base} is not on its cluster address ${member.address}`,
      );
    }
    const ca = base.startsWith("https:") ? store.pki.ca()?.certPem : undefined;
    const client = ca === undefined ? undefined : Deno.createHttpClient({ caCerts: [ca] });
    try {
      const res = await fetchFn(`${base}${path}`, {
        headers: token === undefined ? {} : { "X-Consul-Token": token },
        signal: AbortSignal.timeout(PEER_TIMEOUT_MS),
        ...(client === undefined ? {} : { client }),
      } as RequestInit);
      const text = await res.text();
      if (text.length > PEER_ANSWER_BYTES_MAX) throw new PeerError("its answer is too large");
      if (!res.ok) {
        throw new PeerError(`it answered ${res.status}: ${text.trim().slice(0, 200)}`, res.status);
      }
      return JSON.parse(text);
    } catch (e) {
      if (e instanceof PeerError) throw e;
      const name = (e as Error)?.name;
      if (name === "TimeoutError" || name === "AbortError") {
        throw new PeerError(`no answer within ${PEER_TIMEOUT_MS} ms`);
      }
      throw new PeerError(errorText(e).split("\n")[0]!.slice(0, 200));
    } finally {
      client?.close();
    }
  };
}

/**
 * Every other member's proxy ejections of `instances` (asked at once, each time-bounded):
 * members without a proxy are `no-proxy`, down ones and those that fail `unknown`.
 */
export async function peerEjections(
  get: PeerGet,
  nodes: readonly NodeInfo[],
  self: string,
  instances: ReadonlySet<string>,
  token: string | undefined,
): Promise<MemberEjections[]> {
  const others = nodes.filter((n) => n.name !== self)
    .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return await Promise.all(others.map(async (n, i): Promise<MemberEjections> => {
    const base = { member: n.name, ejected: [], error: null };
    if (n.meta.proxy === "false") return { ...base, state: "no-proxy" };
    if (i >= PEERS_ASKED_MAX) {
      return { ...base, state: "unknown", error: `not asked (over ${PEERS_ASKED_MAX} members)` };
    }
    if (n.status === "down") return { ...base, state: "unknown", error: "the member is down" };
    try {
      const r = await get(n, "/v1/berth/routes?stale", token) as { ejected?: unknown };
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

/** One member's answer to a question asked of every member, or why there is none. */
export interface PeerAnswer {
  member: string;
  body: unknown;
  error: PeerError | null;
}

/**
 * Asks every other member that is not down (at most PEERS_ASKED_MAX, by name) `path` at once;
 * each answer or failure, by member name.
 */
export async function askEveryMember(
  get: PeerGet,
  nodes: readonly NodeInfo[],
  self: string,
  path: string,
  token: string | undefined,
): Promise<PeerAnswer[]> {
  const others = nodes.filter((n) => n.name !== self && n.status !== "down")
    .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    .slice(0, PEERS_ASKED_MAX);
  return await Promise.all(others.map(async (n): Promise<PeerAnswer> => {
    try {
      return { member: n.name, body: await get(n, path, token), error: null };
    } catch (e) {
      const error = e instanceof PeerError ? e : new PeerError(errorText(e));
      return { member: n.name, body: null, error };
    }
  }));
}

/** Whether the URL's host is the host of `address` (`ip:port`, `[v6]:port`). */
function sameHost(url: string, address: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
    return host === parseHostPort(address).host.replace(/^\[|\]$/g, "");
  } catch {
    return false;
  }
}

/** The node records of the current Raft members (the only nodes explain asks). */
export function memberNodes(store: Pick<Store, "members" | "nodes">): NodeInfo[] {
  const names = new Set(store.members().map((m) => m.name));
  return store.nodes().filter((n) => names.has(n.name));
}
