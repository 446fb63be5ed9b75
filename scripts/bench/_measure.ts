/**
 * Latency probes the scale bench takes at 100 and at 100,000 instances: DNS over one UDP socket
 * (queries one at a time, so each figure is the server's answer time plus loopback, no queueing),
 * HTTP GETs one at a time, wrk's latency distribution, and the percentiles of a sample.
 *
 * @module
 */
// @ts-types="../../test/dns_packet.d.ts"
import * as dnsPacket from "dns-packet";
import { createSocket } from "node:dgram";
import type { Buffer } from "node:buffer";
import { run } from "./_shared.ts";
import type { GapReport } from "../../src/lib/gap_recorder.ts";
import { type AgentProc, apiJson } from "../../test/harness.ts";

/** What `GET /v1/berth/loop` answers (the agent runs with BERTH_LOOP_PROBE=1). */
export interface LoopReading {
  worstPauseMs: number;
  sinceMs: number;
  pausesOver10Ms: number;
  pausesOver50Ms: number;
  /** The heartbeats this member received from its leader (src/lib/gap_recorder.ts). */
  heartbeatGaps?: GapReport;
}

/** `a`'s loop probe; zeroed after the read unless `reset` is false. */
export async function loopOf(a: AgentProc, reset = true): Promise<LoopReading> {
  return await apiJson(a, `/v1/berth/loop${reset ? "?reset" : ""}`) as LoopReading;
}

/** p50 and p99 of a sample, in ms. */
export interface Tail {
  p50: number;
  p99: number;
  n: number;
}

/** The p50 and p99 of `ms` (nearest rank). */
export function tail(ms: readonly number[]): Tail {
  if (ms.length === 0) return { p50: NaN, p99: NaN, n: 0 };
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return { p50: at(0.5), p99: at(0.99), n: s.length };
}

export function showTail(t: Tail): string {
  return `p50 ${t.p50.toFixed(2)} ms, p99 ${t.p99.toFixed(2)} ms`;
}

/**
 * `n` DNS queries for `name` (type `type`) to host:port over one UDP socket, one at a time; the
 * time from send to the answer with the query's id, ms. Throws on a timeout or an error answer.
 */
export async function dnsLatencies(
  host: string,
  port: number,
  name: string,
  opts: { n: number; type?: string; timeoutMs?: number },
): Promise<{ ms: number[]; answers: number }> {
  const sock = createSocket("udp4");
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  const waiting = new Map<number, (b: Buffer) => void>();
  sock.on("message", (msg: Buffer) => waiting.get(msg.readUInt16BE(0))?.(msg));
  const ms: number[] = [];
  let answers = 0;
  try {
    for (let i = 0; i < opts.n; i++) {
      const id = (i % 65_000) + 1;
      const q = dnsPacket.encode({
        type: "query",
        id,
        flags: dnsPacket.RECURSION_DESIRED,
        questions: [{ type: opts.type ?? "A", name, class: "IN" }],
      });
      const t0 = performance.now();
      const got = await new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`DNS ${name}: no answer in ${opts.timeoutMs ?? 2000} ms`)),
          opts.timeoutMs ?? 2000,
        );
        waiting.set(id, (b) => {
          clearTimeout(timer);
          resolve(b);
        });
        sock.send(q, port, host);
      });
      ms.push(performance.now() - t0);
      waiting.delete(id);
      const r = dnsPacket.decode(got);
      if ((r.rcode ?? "NOERROR") !== "NOERROR") throw new Error(`DNS ${name}: ${r.rcode}`);
      answers = r.answers?.length ?? 0;
    }
  } finally {
    sock.close();
  }
  return { ms, answers };
}

/** `n` GETs of `url` one at a time (fetch keeps the connection), ms each; throws unless 200. */
export async function httpLatencies(url: string, n: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await fetch(url);
    await r.arrayBuffer();
    ms.push(performance.now() - t0);
    if (r.status !== 200) throw new Error(`GET ${url}: ${r.status}`);
  }
  return ms;
}

/** wrk's figures: requests/s, p50 and p99 latency (ms), and the non-2xx/3xx count. */
export interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
}

/** Reads `wrk --latency` output. */
export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, "m").exec(out);
    if (m === null) return NaN;
    const unit = { us: 0.001, ms: 1, s: 1000 }[m[2] as "us" | "ms" | "s"];
    return Number(m[1]) * unit;
  };
  if (rps === null) throw new Error(`wrk output not understood:\n${out}`);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  return { rps: Number(rps[1]), p50: pct("50"), p99: pct("99"), non2xx: Number(non2xx?.[1] ?? 0) };
}

/** wrk with 1 thread and `connections` against `url` with a Host header, for `seconds`. */
export async function wrk(
  url: string,
  host: string,
  opts: { connections: number; seconds: number },
): Promise<WrkResult> {
  const args = ["-t", "1", "-c", String(opts.connections), "-d", `${opts.seconds}s`, "--latency"];
  return parseWrk(await run("wrk", [...args, "-H", `Host: ${host}`, url]));
}

/** Resident memory of process `pid` now (VmRSS), MiB. */
export function rssMiB(pid: number): number {
  return procStatusMiB(pid, "VmRSS");
}

/**
 * A memory line of /proc/PID/status, MiB: `RssFile` is the executable's and libraries' pages
 * (shared with other processes running them), `RssAnon` the process's own.
 */
export function procStatusMiB(pid: number, field: "VmRSS" | "RssAnon" | "RssFile"): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(
    Deno.readTextFileSync(`/proc/${pid}/status`),
  );
  if (m === null) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]) / 1024;
}
