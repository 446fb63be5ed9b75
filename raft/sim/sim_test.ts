import { deepStrictEqual, ok } from "node:assert/strict";
import { nodesFor, type RunOptions, runSeed } from "./cluster.ts";

/** Runs `seeds` with `opts` and returns one line per seed that violated an invariant. */
function sweep(seeds: number[], opts: (seed: number) => RunOptions): string[] {
  const failures: string[] = [];
  for (const seed of seeds) {
    const o = opts(seed);
    const r = runSeed(o);
    if (r.violations.length > 0) {
      failures.push(
        `seed ${seed}: ${r.violations.join("; ")} (replay: deno task sim --seed ${seed} ` +
          `--nodes ${o.nodes} --steps ${o.steps} --heal ${o.healSteps ?? 600})`,
      );
    }
  }
  return failures;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

Deno.test("sim: 200 seeds (3 and 5 nodes) keep every safety invariant and converge", () => {
  const failures = sweep(
    range(1, 200),
    (seed) => ({ seed, nodes: nodesFor(seed, undefined), steps: 600, healSteps: 300 }),
  );
  deepStrictEqual(failures, []);
  // Reference: §5.2, §5.3, §5.4 (Figure 3 properties), thesis §4, §6.4
});

Deno.test("sim: 400 long 3-node seeds (2000 steps, 600 healing) keep every invariant and converge", () => {
  // The soak's shape (`deno task sim --seeds N --nodes 3 --steps 2000 --heal 600`): long runs
  // accumulate membership changes, so voters with diverged configurations meet after healing.
  const failures = sweep(
    range(1, 400),
    (seed) => ({ seed, nodes: 3, steps: 2000, healSteps: 600 }),
  );
  deepStrictEqual(failures, []);
  // Reference: §5.1, §5.4, thesis §4 (membership changes)
});

Deno.test("sim: seeds that once failed replay without violation", async (t) => {
  // 1014 and 625 stalled forever after healing: one voter had applied a membership change the
  // other had not, the stale one held the higher term and campaigned only toward a removed
  // node, and the stale-term RequestVote of the up-to-date voter was dropped instead of
  // answered (fixed in Raft.step; raft_scenario_test.ts replays the situation
  // deterministically, since these seeds now take other paths).
  // 6925 was the harness: it took the membership from the node that had applied most so far,
  // and nodes re-applying their log after a restart took turns decommissioning each other.
  const cases: (RunOptions & { was: string })[] = [
    {
      seed: 1014,
      nodes: 3,
      steps: 2000,
      healSteps: 600,
      was: "member 2 applied up to 86 < acknowledged 97 after healing",
    },
    {
      seed: 625,
      nodes: 3,
      steps: 2000,
      healSteps: 600,
      was: "member 1 applied up to 167 < acknowledged 201 after healing",
    },
    {
      seed: 6925,
      nodes: 3,
      steps: 2000,
      healSteps: 600,
      was: "member 3 applied up to 34 < acknowledged 815 after healing",
    },
  ];
  for (const c of cases) {
    await t.step(`seed ${c.seed} (was: ${c.was})`, () => {
      deepStrictEqual(sweep([c.seed], () => c), []);
    });
  }
  // Reference: §5.1 (a stale-term request is rejected with the current term)
});

Deno.test("sim: a seed replays exactly", () => {
  const a = runSeed({ seed: 12345, nodes: 5, steps: 400, trace: true });
  const b = runSeed({ seed: 12345, nodes: 5, steps: 400, trace: true });
  deepStrictEqual(a.trace, b.trace);
  deepStrictEqual(a.stats, b.stats);
  ok(a.stats.acked > 0, "the run acknowledged writes");
  // Reference: determinism of the simulation harness
});
