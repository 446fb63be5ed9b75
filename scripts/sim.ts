/**
 * Deterministic simulation of raft clusters (raft/sim/), from the command line.
 *
 *     deno task sim                      # 200 seeds, mixing 3 and 5 nodes
 *     deno task sim --seeds 1000 --steps 3000
 *     deno task sim --seeds 5000 --nodes 3   # 3-node clusters only (sim_test.ts runs 400)
 *     deno task sim --seed 17            # replay one seed exactly
 *     deno task sim --seed 17 --trace    # with a per-step trace
 *
 * Flags: --seeds N (default 200), --seed S (replay one), --nodes 3|5 (default: odd seeds 5,
 * even seeds 3), --steps K (default 2000), --heal H (default 600), --trace.
 * Exit status 1 if any seed violates an invariant.
 *
 * @module
 */
import { HEAL_STEPS_MAX, nodesFor, runSeed } from "../raft/sim/cluster.ts";
import { errorText } from "../src/lib/error_text.ts";
import { parseBool, parseFlags, parseIntIn } from "../src/lib/flags.ts";

const FLAGS = [
  ...["seeds", "seed", "nodes", "steps", "heal"].map((name) => ({ name, kind: "string" })),
  { name: "trace", kind: "bool" },
];
/** Limits of the integer flags. */
const RANGES: Record<string, [number, number]> = {
  seeds: [1, 10_000_000],
  seed: [0, 2 ** 32 - 1],
  nodes: [3, 5],
  steps: [1, 1_000_000],
  heal: [0, HEAL_STEPS_MAX],
};

function simFlags(args: string[]) {
  const { values } = parseFlags(args, FLAGS, { positionals: false });
  const int = (name: string): number | undefined => {
    const raw = values.get(name);
    if (raw === undefined) return undefined;
    const range = RANGES[name]!;
    try {
      return parseIntIn(raw, range);
    } catch (e) {
      throw new Error(
        `--${name} ${raw}: ${errorText(e)}; expected an integer in ${range.join("..")}`,
      );
    }
  };
  const nodes = int("nodes");
  if (nodes === 4) throw new Error("--nodes 4: expected 3 or 5");
  return {
    nodes: nodes as 3 | 5 | undefined,
    steps: int("steps") ?? 2000,
    heal: int("heal") ?? 600,
    trace: values.has("trace") && parseBool(values.get("trace")!),
    one: int("seed"),
    seeds: int("seeds") ?? 200,
  };
}

function main(args: string[]): number {
  let flags: ReturnType<typeof simFlags>;
  try {
    flags = simFlags(args);
  } catch (e) {
    console.error(`sim: ${errorText(e)}`);
    return 2;
  }
  const { nodes, steps, heal, trace, one } = flags;
  const seeds = one === undefined ? Array.from({ length: flags.seeds }, (_, i) => i + 1) : [one];
  const t0 = performance.now();
  let failed = 0;
  let acked = 0, reads = 0;
  for (const seed of seeds) {
    const n = nodesFor(seed, nodes);
    const r = runSeed({ seed, nodes: n, steps, healSteps: heal, trace });
    acked += r.stats.acked;
    reads += r.stats.readsServed;
    if (trace) { for (const l of r.trace) console.log(l); }
    if (one !== undefined) {
      console.log(`seed ${seed}: ${r.description}`);
      console.log(`seed ${seed}: ${JSON.stringify(r.stats)}`);
    }
    if (r.violations.length > 0) {
      failed++;
      console.log(`FAIL seed ${seed} (${r.description})`);
      for (const v of r.violations) console.log(`  ${v}`);
      console.log(
        `  replay: deno task sim --seed ${seed} --nodes ${n} --steps ${steps} --heal ${heal}`,
      );
    }
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `seeds run: ${seeds.length}, violations: ${failed}, seconds: ${secs.toFixed(1)}, ` +
      `seeds/s: ${
        (seeds.length / secs).toFixed(1)
      }, writes acknowledged: ${acked}, reads served: ${reads}`,
  );
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(main(Deno.args));
