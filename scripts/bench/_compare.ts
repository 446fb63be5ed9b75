/**
 * Side-by-side measurement for `bench http` and `bench dns`: a group of sides (berth and the
 * anchors it is compared with) is started, each side is measured in turn, then again in the
 * reverse order (drifting background load hits every side alike), and the group is stopped.
 * A side's figure is the mean rate of its runs, the mean p50 and the worse p99, with the CPU its
 * own processes used (in cores), the CPU the load client used (in % of one core: near 100%
 * per client thread means the client, not the server, was the limit), its backend's, and what
 * the rest of the machine used meanwhile (/proc/stat's busy time less those: on a shared
 * machine, the cores the side could not have). Printed as the issue's
 * table (`| | berth | anchor | ratio |`) and one detail line per side.
 *
 * @module
 */
import { errorText } from "../../src/lib/error_text.ts";
import { cpuMs, machineBusyMs } from "./_proc.ts";

/** One measured run of a load client against a side. */
export interface RunFigures {
  /** Successful requests (queries) per second. */
  rate: number;
  p50Ms: number;
  p99Ms: number;
  /** Failed requests: socket errors, timeouts, non-2xx / lost queries. */
  errors: number;
  /** The client's CPU time over the run, ms, and the run's wall time, ms. */
  clientCpuMs: number;
  wallMs: number;
}

/** A side's runs summarised. */
export interface Figure {
  rate: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** The client's CPU, in % of one core (mean over the runs). */
  clientCpuPct: number;
  /** The side's own processes' CPU over the runs, in cores (mean). */
  serverCores: number;
  /** Its backend's CPU, and what every other process of the machine used meanwhile, in cores. */
  backendCores: number;
  otherCores: number;
  runs: number;
}

/** A running side: where the load goes, and its processes (for their CPU time). */
export interface Running {
  port: number;
  pids(): number[];
  /** Its backend's processes (not counted as the side's CPU); none when it has none. */
  backendPids?(): number[];
  stop(): Promise<void>;
}

/** A side to start: its name in the tables, or why it is skipped in this build. */
export interface SideSpec {
  /** Short key the table rows name it by. */
  key: string;
  /** What is measured, e.g. "berth --proxy-workers 1" or "nginx worker_processes auto". */
  name: string;
  start(): Promise<Running>;
  /** Whether it has a backend of its own (its CPU is shown). */
  backend?: boolean;
  /** Set: not started, shown with this reason. */
  skip?: string;
}

/** What a group measured: each side's figure, or why it has none. */
export type Outcome = { figure: Figure } | { failure: string };

/** A run with the CPU the side, its backend and the whole machine used meanwhile, ms. */
export type SideRun = RunFigures & {
  serverCpuMs: number;
  backendCpuMs: number;
  machineCpuMs: number;
};

export function summarize(runs: readonly SideRun[]): Figure {
  const mean = (f: (r: SideRun) => number) => runs.reduce((s, r) => s + f(r), 0) / runs.length;
  return {
    rate: mean((r) => r.rate),
    p50Ms: mean((r) => r.p50Ms),
    p99Ms: Math.max(...runs.map((r) => r.p99Ms)),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    clientCpuPct: mean((r) => r.clientCpuMs / r.wallMs * 100),
    serverCores: mean((r) => r.serverCpuMs / r.wallMs),
    backendCores: mean((r) => r.backendCpuMs / r.wallMs),
    otherCores: mean((r) =>
      Math.max(0, r.machineCpuMs - r.serverCpuMs - r.backendCpuMs - r.clientCpuMs) / r.wallMs
    ),
    runs: runs.length,
  };
}

/**
 * Starts every side of the group, measures each `rounds` times (forward, backward, …), stops
 * them all. A side that fails to start or whose run throws gets a failure (the others go on).
 */
export async function measureGroup(
  sides: readonly SideSpec[],
  measure: (side: SideSpec, r: Running) => Promise<RunFigures>,
  rounds = 2,
): Promise<Map<string, Outcome>> {
  const outcomes = new Map<string, Outcome>();
  const started: [SideSpec, Running][] = [];
  try {
    for (const s of sides) {
      if (s.skip !== undefined) {
        outcomes.set(s.key, { failure: `skipped: ${s.skip}` });
        continue;
      }
      try {
        started.push([s, await s.start()]);
      } catch (e) {
        outcomes.set(s.key, { failure: `set-up failed: ${brief(e, 1)}` });
      }
    }
    const runs = new Map<string, SideRun[]>();
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? started : started.toReversed();
      for (const [s, r] of order) {
        if (outcomes.has(s.key)) continue; // failed before
        try {
          const backend = () => r.backendPids?.() ?? [];
          const [server0, backend0, machine0] = [
            cpuMs(r.pids()),
            cpuMs(backend()),
            machineBusyMs(),
          ];
          const fig = await measure(s, r);
          const machineCpuMs = machineBusyMs() - machine0;
          const serverCpuMs = cpuMs(r.pids()) - server0;
          const backendCpuMs = cpuMs(backend()) - backend0;
          runs.set(s.key, [
            ...(runs.get(s.key) ?? []),
            { ...fig, serverCpuMs, backendCpuMs, machineCpuMs },
          ]);
        } catch (e) {
          outcomes.set(s.key, { failure: brief(e, 3) });
        }
      }
    }
    for (const [s] of started) {
      const r = runs.get(s.key);
      if (!outcomes.has(s.key) && r !== undefined) outcomes.set(s.key, { figure: summarize(r) });
    }
  } finally {
    await Promise.all(started.map(([, r]) => r.stop().catch(() => {})));
  }
  return outcomes;
}

/** The first `lines` lines of an error's message, on one line, at most 300 characters. */
export function brief(e: unknown, lines: number): string {
  const text = e instanceof Error ? e.message : errorText(e);
  const one = text.split("\n").slice(0, lines).join(" ");
  return one.length > 300 ? `${one.slice(0, 300)}…` : one;
}

/** 45123 → "45.1k", 812 → "812". */
export function rateText(n: number): string {
  if (!Number.isFinite(n)) return "?";
  return n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0);
}

export function msText(ms: number): string {
  if (!Number.isFinite(ms)) return "?";
  return ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
}

/** A row of the table: berth's side against an anchor's, with the targets (if any). */
export interface Row {
  label: string;
  berth: string;
  anchor: string;
  /** Goals shown beside the ratio: rate at least `rate`×, p99 at most `p99`× the anchor's. */
  goal?: { rate: number; p99: number };
}

/** The table: `| label | berth | anchor | ratio |`, one line per row. */
export function table(
  title: string,
  rows: readonly Row[],
  sides: readonly SideSpec[],
  outcomes: ReadonlyMap<string, Outcome>,
  unit: string,
): string[] {
  const name = (key: string) => sides.find((s) => s.key === key)?.name ?? key;
  const cell = (key: string) => {
    const o = outcomes.get(key);
    if (o === undefined) return `${name(key)}: not measured`;
    if ("failure" in o) return `${name(key)}: ${o.failure}`;
    const f = o.figure;
    return `${name(key)}: ${rateText(f.rate)} ${unit}, p50 ${msText(f.p50Ms)} ms, p99 ${
      msText(f.p99Ms)
    } ms`;
  };
  const lines = [`| ${title} | berth | anchor | ratio |`, "|---|---|---|---|"];
  for (const row of rows) {
    const b = outcomes.get(row.berth);
    const a = outcomes.get(row.anchor);
    let ratio = "—";
    if (b !== undefined && a !== undefined && "figure" in b && "figure" in a) {
      const r = b.figure.rate / a.figure.rate;
      const p = b.figure.p99Ms / a.figure.p99Ms;
      ratio = `${r.toFixed(2)}× ${unit}, p99 ${p.toFixed(2)}×`;
      if (row.goal !== undefined) {
        const met = r >= row.goal.rate && p <= row.goal.p99;
        ratio += ` (goal ≥ ${row.goal.rate.toFixed(1)}×, p99 ≤ ${row.goal.p99.toFixed(1)}×: ` +
          `${met ? "met" : "not met"})`;
      }
    }
    lines.push(`| ${row.label} | ${cell(row.berth)} | ${cell(row.anchor)} | ${ratio} |`);
  }
  return lines;
}

/** One line per side: every figure, the client's and the side's own CPU. */
export function details(
  sides: readonly SideSpec[],
  outcomes: ReadonlyMap<string, Outcome>,
  o: { unit: string; client: string },
): string[] {
  const width = Math.max(...sides.map((s) => s.name.length));
  return sides.map((s) => {
    const out = outcomes.get(s.key);
    const head = `  ${s.name.padEnd(width)}  `;
    if (out === undefined) return `${head}not measured`;
    if ("failure" in out) return `${head}${out.failure}`;
    const f = out.figure;
    return `${head}${f.rate.toFixed(0).padStart(7)} ${o.unit}  p50 ${msText(f.p50Ms)} ms  p99 ` +
      `${msText(f.p99Ms)} ms  errors ${f.errors}  CPU: itself ${f.serverCores.toFixed(2)} cores, ` +
      `${o.client} ${f.clientCpuPct.toFixed(0)}% of a core, ` +
      (s.backend ? `backend ${f.backendCores.toFixed(2)}, ` : "") +
      `the rest of the machine ${f.otherCores.toFixed(2)}  (${f.runs} runs)`;
  });
}

/** Side `a`'s rate over side `b`'s (NaN when either has no figure). */
export function rateRatio(outcomes: ReadonlyMap<string, Outcome>, a: string, b: string): number {
  const x = outcomes.get(a);
  const y = outcomes.get(b);
  if (x === undefined || y === undefined || !("figure" in x) || !("figure" in y)) return NaN;
  return x.figure.rate / y.figure.rate;
}
