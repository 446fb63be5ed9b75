/**
 * dnsperf's figures for `bench dns`: dnsperf 2.x prints no latency percentiles, only the mean and
 * the extremes, so runs use `-v` (a line per query with its latency) written to a file, and
 * this reads that file line by line into a histogram of 1 µs buckets (dnsperf prints 6
 * decimals of a second) for an exact p50 and p99, with the summary's queries/s and lost count.
 *
 * @module
 */

/** What one dnsperf run measured. */
export interface DnsperfRun {
  qps: number;
  lost: number;
  /** Answers with a latency (any rcode). */
  answers: number;
  /** Answers whose rcode was not NOERROR. */
  failed: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Latencies at 1 µs resolution up to 1 s; anything slower is kept in one overflow count. */
const BUCKETS = 1_000_000;

/** Reads a dnsperf `-v` output one line at a time (see the module comment). */
export class DnsperfReader {
  readonly #hist = new Uint32Array(BUCKETS + 1);
  #answers = 0;
  #failed = 0;
  #maxUs = 0;
  #qps: number | undefined;
  #lost: number | undefined;

  line(l: string): void {
    if (l.startsWith("> ")) {
      // "> NOERROR name A 0.000123", or "> T name A" for a timed-out query (counted as lost).
      const f = l.slice(2).trim().split(/\s+/);
      const s = Number(f[f.length - 1]);
      if (f[0] === "T" || !Number.isFinite(s)) return;
      const us = Math.round(s * 1e6);
      this.#hist[Math.min(BUCKETS, us)]!++;
      if (us > this.#maxUs) this.#maxUs = us;
      this.#answers++;
      if (f[0] !== "NOERROR") this.#failed++;
      return;
    }
    const qps = /^\s*Queries per second:\s+([\d.]+)/.exec(l);
    if (qps !== null) this.#qps = Number(qps[1]);
    const lost = /^\s*Queries lost:\s+(\d+)/.exec(l);
    if (lost !== null) this.#lost = Number(lost[1]);
  }

  /** The quantile `q` (0..1, nearest rank) of the latencies read, ms. */
  #quantileMs(q: number): number {
    if (this.#answers === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.#answers));
    let seen = 0;
    for (let us = 0; us <= BUCKETS; us++) {
      seen += this.#hist[us]!;
      if (seen >= rank) return us === BUCKETS ? this.#maxUs / 1000 : us / 1000;
    }
    return this.#maxUs / 1000;
  }

  result(): DnsperfRun {
    if (this.#qps === undefined || this.#lost === undefined) {
      throw new Error("dnsperf output has no summary (Queries per second, Queries lost)");
    }
    if (this.#answers === 0) throw new Error("dnsperf -v output has no answered query");
    return {
      qps: this.#qps,
      lost: this.#lost,
      answers: this.#answers,
      failed: this.#failed,
      p50Ms: this.#quantileMs(0.5),
      p99Ms: this.#quantileMs(0.99),
      maxMs: this.#maxUs / 1000,
    };
  }
}

/** Reads dnsperf's `-v` output in file `path` (streamed: a run writes millions of lines). */
export async function readDnsperfFile(path: string): Promise<DnsperfRun> {
  const reader = new DnsperfReader();
  const file = await Deno.open(path); // its readable closes it at the end
  let rest = "";
  for await (const chunk of file.readable.pipeThrough(new TextDecoderStream())) {
    const text = rest + chunk;
    const lines = text.split("\n");
    rest = lines.pop()!;
    for (const l of lines) reader.line(l);
  }
  if (rest !== "") reader.line(rest);
  return reader.result();
}
