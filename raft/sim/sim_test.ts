import { deepStrictEqual, ok } from "node:assert/strict";
import { runSeed } from "./cluster.ts";
import { nodesFor } from "./main.ts";

Deno.test("sim: 200 seeds (3 and 5 nodes) keep every safety invariant and converge", () => {
  const failures: string[] = [];
  for (let seed = 1; seed <= 200; seed++) {
    const nodes = nodesFor(seed, undefined);
    const r = runSeed({ seed, nodes, steps: 600, healSteps: 300 });
    if (r.violations.length > 0) {
      failures.push(`seed ${seed} (${nodes} nodes): ${r.violations.join("; ")}`);
    }
  }
  deepStrictEqual(failures, []);
  // Reference: §5.2, §5.3, §5.4 (Figure 3 properties), thesis §4, §6.4
});

Deno.test("sim: a seed replays exactly", () => {
  const a = runSeed({ seed: 12345, nodes: 5, steps: 400, trace: true });
  const b = runSeed({ seed: 12345, nodes: 5, steps: 400, trace: true });
  deepStrictEqual(a.trace, b.trace);
  deepStrictEqual(a.stats, b.stats);
  ok(a.stats.acked > 0, "the run acknowledged writes");
  // Reference: determinism of the simulation harness
});
