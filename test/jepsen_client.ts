/**
 * The clients of the Jepsen-style workload (test/jepsen.ts): each does random get / put / cas on
 * shared keys through the Consul KV API and records every operation with its call and return
 * times, an unknown outcome as `{ unknown: true }` (see test/jepsen.ts for the rules).
 *
 * @module
 */
import type { AgentProc } from "./harness.ts";
import type { KvInput, KvOutput, Operation } from "./linearizability.ts";
import { sleep } from "./wait.ts";

export type KvOperation = Operation<KvInput, KvOutput>;

/** Pause of a client after a failed request (bounds unknown outcomes while a member is down). */
export const ERROR_BACKOFF_MS = 200;
/** Upper bound of a client's random pause between two operations. */
export const THINK_MS_MAX = 5;
/** Operations one client performs at most (bounds the history the checker must search). */
export const CLIENT_OPS_MAX = 20_000;

export interface OpCounts {
  /** Operations with a definite outcome (get with a value, put ok, cas ok or failed). */
  ok: number;
  gets: number;
  puts: number;
  casOk: number;
  casFailed: number;
  /** Writes with an unknown outcome. */
  unknown: number;
  /** Gets that failed (dropped) and writes that surely failed (4xx, not recorded). */
  failed: number;
}

export type Outcome<T> = { kind: "ok"; value: T } | { kind: "failed" } | { kind: "unknown" };

export async function kvRead(
  a: AgentProc,
  key: string,
  timeoutMs: number,
  mode = "",
): Promise<Outcome<{ value: string | null; index: number }>> {
  try {
    const r = await fetch(`${a.httpUrl}/v1/kv/${key}${mode}`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (r.status === 404) {
      await r.body?.cancel();
      return { kind: "ok", value: { value: null, index: 0 } };
    }
    const text = await r.text();
    if (r.status !== 200) return { kind: r.status < 500 ? "failed" : "unknown" };
    const [e] = JSON.parse(text) as { Value: string | null; ModifyIndex: number }[];
    if (e === undefined) return { kind: "unknown" };
    const value = e.Value === null
      ? ""
      : new TextDecoder().decode(Uint8Array.from(atob(e.Value), (c) => c.charCodeAt(0)));
    return { kind: "ok", value: { value, index: e.ModifyIndex } };
  } catch {
    return { kind: "unknown" };
  }
}

async function kvWrite(
  a: AgentProc,
  key: string,
  value: string,
  opts: { cas?: number; timeoutMs: number },
): Promise<Outcome<boolean>> {
  // A connection of its own: a request that failed on a kept-alive connection may be retried
  // by fetch on a new one, and a refused retry would hide that the first one was sent.
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const q = opts.cas === undefined ? "" : `?cas=${opts.cas}`;
    const init: RequestInit & { client: Deno.HttpClient } = {
      method: "PUT",
      body: value,
      signal: AbortSignal.timeout(opts.timeoutMs),
      client,
    };
    const r = await fetch(`${a.httpUrl}/v1/kv/${key}${q}`, init);
    const text = (await r.text()).trim();
    if (r.status === 200 && (text === "true" || text === "false")) {
      return { kind: "ok", value: text === "true" };
    }
    // A 4xx was refused before (or at) apply without changing anything; anything else may
    // have been committed.
    return { kind: r.status >= 400 && r.status < 500 ? "failed" : "unknown" };
  } catch (e) {
    // No connection could be made (the member is down): the request never left.
    return { kind: notConnected(e) ? "failed" : "unknown" };
  } finally {
    client.close();
  }
}

/**
 * Whether fetch failed while connecting (refused, unreachable): nothing was sent, provided the
 * request had a connection of its own (no retry after a kept-alive connection failed).
 */
export function notConnected(e: unknown): boolean {
  return /client error \(Connect\)/.test(String((e as Error | undefined)?.cause ?? ""));
}

export function emptyCounts(): OpCounts {
  return { ok: 0, gets: 0, puts: 0, casOk: 0, casFailed: 0, unknown: 0, failed: 0 };
}

export async function client(
  id: number,
  members: AgentProc[],
  o: {
    endAt: number;
    keys: string[];
    timeoutMs: number;
    readQuery: string;
    random: () => number;
    history: KvOperation[];
    counts: OpCounts;
  },
): Promise<void> {
  // `members` is the run's array: a restarted member replaces its slot in it.
  const slot = id % members.length;
  let seq = 0;
  for (let n = 0; n < CLIENT_OPS_MAX && performance.now() < o.endAt; n++) {
    const a = members[slot]!;
    const key = o.keys[Math.floor(o.random() * o.keys.length)]!;
    const dice = o.random();
    let good = true;
    if (dice < 0.7) {
      // get (alone, or as the first half of a cas)
      const call = performance.now();
      const read = await kvRead(a, key, o.timeoutMs, o.readQuery);
      const ret = performance.now();
      if (read.kind !== "ok") {
        o.counts.failed++;
        good = false;
      } else {
        o.history.push({
          clientId: id,
          input: { key, op: "get" },
          call,
          output: { value: read.value.value },
          return: ret,
        });
        o.counts.ok++;
        o.counts.gets++;
        if (dice >= 0.4 && performance.now() < o.endAt) {
          good = await write(id, a, key, `${id}-${++seq}`, read.value, o);
        }
      }
    } else {
      good = await write(id, a, key, `${id}-${++seq}`, undefined, o);
    }
    await sleep(good ? Math.floor(o.random() * THINK_MS_MAX) : ERROR_BACKOFF_MS);
  }
}

/** A put (`read` undefined) or a cas against what `read` saw; records it; returns success. */
async function write(
  id: number,
  a: AgentProc,
  key: string,
  value: string,
  read: { value: string | null; index: number } | undefined,
  o: { timeoutMs: number; history: KvOperation[]; counts: OpCounts },
): Promise<boolean> {
  const input: KvInput = read === undefined
    ? { key, op: "put", value }
    : { key, op: "cas", expect: read.value, value };
  const call = performance.now();
  const r = await kvWrite(a, key, value, { cas: read?.index, timeoutMs: o.timeoutMs });
  const ret = performance.now();
  if (r.kind === "failed") {
    o.counts.failed++;
    return false;
  }
  if (r.kind === "unknown") {
    o.history.push({ clientId: id, input, call, output: { unknown: true }, return: ret });
    o.counts.unknown++;
    return false;
  }
  if (read === undefined && !r.value) {
    // A plain put never answers false; treat it as not understood.
    o.history.push({ clientId: id, input, call, output: { unknown: true }, return: ret });
    o.counts.unknown++;
    return false;
  }
  o.history.push({ clientId: id, input, call, output: { ok: r.value }, return: ret });
  o.counts.ok++;
  if (read === undefined) o.counts.puts++;
  else if (r.value) o.counts.casOk++;
  else o.counts.casFailed++;
  return true;
}
