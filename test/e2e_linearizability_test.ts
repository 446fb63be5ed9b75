/**
 * End to end under faults: a 3-member cluster (mutual TLS, the default), 5 clients doing get/put/cas on 3 keys for 20 s
 * while a nemesis kills the leader, a random member or every member at once (and restarts them)
 * or freezes a member every ~4 s. The history
 * must be linearizable, enough operations must have completed for that to mean something, and
 * after healing every member must hold the same values. The workload lives in jepsen.ts
 * (shared with scripts/chaos.ts).
 */
import assert from "node:assert/strict";
import { memberTls, startCluster } from "./harness.ts";
import { formatCounts, runJepsen, staleReadsAgree, stopMembers } from "./jepsen.ts";
import { checkOperations, kvModel } from "./linearizability.ts";

/** Completed operations below which a passing check would prove little. */
const OK_OPS_MIN = 50;
/** Definite writes (put ok, cas ok) below which the history hardly exercises writes. */
const OK_WRITES_MIN = 10;
const CHECK_TIMEOUT_MS = 20_000;

Deno.test({
  name:
    "e2e: KV history is linearizable while the leader, any member or all are killed and members are frozen",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const members = await startCluster(3);
    const seed = Math.floor(Math.random() * 2 ** 31);
    let passed = false;
    try {
      // The suite stands for the default: members talking mutual TLS.
      assert.deepEqual(members.filter((a) => !memberTls(a)).map((a) => a.node), []);
      const run = await runJepsen(members, { durationMs: 20_000, clients: 5, keys: 3, seed });
      const context = `seed ${seed}\n${run.events.join("\n")}\n${formatCounts(run.counts)}\n` +
        `member logs: ${members.map((a) => a.logPath).join(" ")}`;
      console.log(context);
      const result = checkOperations(kvModel, run.history, { timeoutMs: CHECK_TIMEOUT_MS });
      assert.deepEqual(
        result,
        { ok: true },
        `${"explanation" in result ? result.explanation : "checker ran out of time"}\n${context}`,
      );
      assert.ok(run.counts.ok >= OK_OPS_MIN, `only ${run.counts.ok} ok operations\n${context}`);
      assert.ok(
        run.counts.puts + run.counts.casOk >= OK_WRITES_MIN,
        `only ${run.counts.puts + run.counts.casOk} successful writes\n${context}`,
      );
      assert.ok(run.converged, `members did not converge after healing\n${context}`);
      assert.ok(
        staleReadsAgree(run),
        `stale reads differ after healing: ${
          JSON.stringify(Object.fromEntries(run.staleReads))
        }\n${context}`,
      );
      passed = true;
    } finally {
      await stopMembers(members);
      // Kept on failure: the member logs are in them.
      if (passed) { for (const a of members) Deno.removeSync(a.dataDir, { recursive: true }); }
    }
  },
});
