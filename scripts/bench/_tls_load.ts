/**
 * The load generators of `deno task bench https`, each run against one side and summarised as
 * requests/s, p99 and errors:
 *
 * - keptAlive: `wrk -t1 -c32 --latency` over HTTPS (as `bench http`): handshakes only at the
 *   start, then requests on the kept-alive connections.
 * - handshakes: `curl --parallel --parallel-max 32 --no-sessionid --http1.1` with
 *   `Connection: close`, every request on a new connection with a full handshake. Not wrk: wrk
 *   keeps the TLS session of a closed connection and resumes it on the next (nginx logs
 *   `$ssl_session_reused` = r for all but the first per connection slot), and so does h2load
 *   when it reconnects; `openssl s_time -new` makes full handshakes but one at a time per
 *   process, counts whole seconds and reports no latencies. curl's `--no-sessionid` turns its
 *   session cache off (TLS 1.2 IDs and 1.3 tickets: nginx logs `.` for each of 5,000), it sends
 *   SNI (`--resolve`), and `-w %{time_total}` gives each request's time including TCP connect
 *   and the handshake, so the p99 is that of a whole new connection.
 * - h2: `h2load -t1 -c32 -m10` (HTTP/2 by ALPN; fails if another protocol is picked), p99 from
 *   its per-request log.
 *
 * @module
 */
import { run } from "./_shared.ts";

/** Connections of every load run (as `bench http`). */
export const LOAD_CONNECTIONS = 32;
/** Concurrent streams per HTTP/2 connection (h2load -m). */
export const H2_STREAMS = 10;

export interface LoadResult {
  /** Successful requests per second. */
  rps: number;
  p99Ms: number;
  /** Failed requests (socket errors, timeouts, non-2xx). */
  errors: number;
}

/** The p-th quantile (0..1) of sorted numbers (NaN when empty). */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/** A wrk duration like `812.00us`, `3.46ms` or `1.02s`, in ms. */
export function wrkDurationMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (m === null) throw new Error(`wrk duration not understood: ${JSON.stringify(text)}`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** requests/s, p99 (from `--latency`) and errors (socket errors and non-2xx) of a wrk report. */
export function parseWrk(out: string): LoadResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p99 = /^\s*99%\s+(\S+)\s*$/m.exec(out);
  if (rps === null || p99 === null) throw new Error(`wrk output not understood:\n${out}`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const errors = (socket === null ? 0 : socket.slice(1).reduce((n, x) => n + Number(x), 0)) +
    Number(non2xx?.[1] ?? 0);
  return { rps: Number(rps[1]), p99Ms: wrkDurationMs(p99[1]!), errors };
}

/** wrk over HTTPS on kept-alive connections to `https://host:port/` with `Host: name`. */
export async function keptAlive(
  opts: { host: string; port: number; name: string; seconds: number },
): Promise<LoadResult> {
  const out = await run("wrk", [
    ...["-t", "1", "-c", String(LOAD_CONNECTIONS), "-d", `${opts.seconds}s`, "--latency"],
    ...["-H", `Host: ${opts.name}`, `https://${opts.host}:${opts.port}/`],
  ]);
  return parseWrk(out);
}

/** The `-w` line curl writes per request in handshakes(): a marker, time_total, http_code. */
const CURL_LINE = /^@ ([\d.]+) (\d{3})$/;

/** requests/s, p99 and errors of handshakes()'s curl lines over `elapsedMs`. */
export function summarizeCurl(lines: readonly string[], elapsedMs: number): LoadResult {
  const times: number[] = [];
  let errors = 0;
  for (const line of lines) {
    const m = CURL_LINE.exec(line.trim());
    if (m === null) continue;
    if (m[2] === "200") times.push(Number(m[1]) * 1000);
    else errors++;
  }
  times.sort((a, b) => a - b);
  return { rps: times.length / (elapsedMs / 1000), p99Ms: quantile(times, 0.99), errors };
}

/**
 * New connections with a full TLS handshake each, for `seconds`: curl (see the module comment)
 * with SNI `name` resolved to `host`, then stopped. Requests cut by the stop are not counted.
 */
export async function handshakes(
  opts: { host: string; port: number; name: string; seconds: number },
): Promise<LoadResult> {
  const { host, port, name } = opts;
  const child = new Deno.Command("curl", {
    args: [
      ...["-s", "-k", "--http1.1", "--no-sessionid", "-H", "Connection: close"],
      ...["-Z", "--parallel-immediate", "--parallel-max", String(LOAD_CONNECTIONS)],
      ...["--resolve", `${name}:${port}:${host}`],
      ...["-w", "%{stderr}@ %{time_total} %{http_code}\\n"],
      `https://${name}:${port}/?n=[1-100000000]`,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const t0 = performance.now();
  const text = new Response(child.stderr).text();
  await new Promise((r) => setTimeout(r, opts.seconds * 1000));
  child.kill("SIGTERM");
  const elapsedMs = performance.now() - t0;
  await child.status;
  const lines = (await text).split("\n");
  const result = summarizeCurl(lines, elapsedMs);
  if (result.rps === 0) {
    throw new Error(`curl made no successful request:\n${lines.slice(0, 5).join("\n")}`);
  }
  return result;
}

/**
 * requests/s and errors of an h2load report; throws unless HTTP/2 was negotiated. Its "failed"
 * counts every request without a 2xx/3xx answer: "errored" (resets, network) and "timeout" are
 * subsets of it (h2load(1)).
 */
export function parseH2load(out: string): Omit<LoadResult, "p99Ms"> {
  if (!/Application protocol: h2\b/.test(out)) {
    throw new Error(`h2load did not negotiate h2:\n${out}`);
  }
  const rps = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out);
  const failed = /requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed/.exec(
    out,
  );
  if (rps === null || failed === null) throw new Error(`h2load output not understood:\n${out}`);
  return { rps: Number(rps[1]), errors: Number(failed[1]) };
}

/** The p99 (ms) of an h2load `--log-file` (start µs, status, duration µs per line). */
export function h2loadLogP99(log: string): number {
  const us = log.split("\n").map((l) => l.split("\t")).filter((c) => c.length === 3)
    .map((c) => Number(c[2])).sort((a, b) => a - b);
  return quantile(us, 0.99) / 1000;
}

/**
 * h2load over TLS with ALPN h2 to `https://host:port/` (`:authority` = `name`, no SNI: the
 * URL's host is an address), for `seconds` after a 1 s warm-up.
 */
export async function h2(
  opts: { host: string; port: number; name: string; seconds: number; dir: string },
): Promise<LoadResult> {
  const logFile = `${opts.dir}/h2load-${opts.port}.log`;
  const out = await run("h2load", [
    ...["-t", "1", "-c", String(LOAD_CONNECTIONS), "-m", String(H2_STREAMS)],
    ...["-D", String(opts.seconds), "--warm-up-time", "1", "--log-file", logFile],
    ...["-H", `:authority: ${opts.name}`, `https://${opts.host}:${opts.port}/`],
  ]);
  const summary = parseH2load(out);
  const p99Ms = h2loadLogP99(await Deno.readTextFile(logFile));
  await Deno.remove(logFile);
  return { ...summary, p99Ms };
}
