/**
 * Deterministic simulation of raft clusters.
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
import { runSeed } from "./cluster.ts";

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith("--")) throw new Error(`--${name} needs a value`);
  return v;
}

function intFlag(args: string[], name: string, def: number): number {
  const v = flag(args, name);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Error(`--${name} must be a non-negative integer, got ${v}`);
  }
  return n;
}

/** Node count for a seed: explicit, or alternating 3/5 so replays need no extra flag. */
export function nodesFor(seed: number, explicit: number | undefined): 3 | 5 {
  if (explicit === 3 || explicit === 5) return explicit;
  return seed % 2 === 1 ? 5 : 3;
}

function main(args: string[]): number {
  const nodesArg = flag(args, "nodes");
  const nodes = nodesArg === undefined ? undefined : Number(nodesArg);
  if (nodes !== undefined && nodes !== 3 && nodes !== 5) {
    console.error(`--nodes must be 3 or 5, got ${nodesArg}`);
    return 2;
  }
  const steps = intFlag(args, "steps", 2000);
  const heal = intFlag(args, "heal", 600);
  const trace = args.includes("--trace");
  const one = flag(args, "seed");
  const seeds = one === undefined
    ? Array.from({ length: intFlag(args, "seeds", 200) }, (_, i) => i + 1)
    : [intFlag(args, "seed", 0)];
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
