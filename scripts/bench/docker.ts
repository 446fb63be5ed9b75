/**
 * `deno task bench docker`: time from `docker run` returning to the container's service name
 * answering in berth's DNS, 20 runs after one warm-up run.
 *
 * @module
 */
import {
  lookupA,
  removeContainers,
  requireDocker,
  runWeb,
  startAgent,
  uniq,
} from "../../test/harness.ts";
import { waitFor } from "../../test/wait.ts";
import { median } from "./_shared.ts";

export async function benchDocker(): Promise<void> {
  await requireDocker();
  const agent = await startAgent();
  const times: number[] = [];
  const names: string[] = [];
  try {
    // Run 0 warms up (the watcher's first reconcile of the engine and the first proposal run
    // right after the agent starts); it is reported apart from the 20 measured runs.
    for (let i = 0; i <= 20; i++) {
      const svc = uniq("lat");
      const name = await runWeb({ body: "x", env: { SERVICE_NAME: svc } });
      const t0 = performance.now();
      names.push(name);
      await waitFor(
        `${svc}.service.berth to answer`,
        async () => (await lookupA(agent.dnsPort, `${svc}.service.berth`)).length > 0,
        { timeoutMs: 10_000, intervalMs: 2 },
      );
      times.push(performance.now() - t0);
    }
    const warmup = times.shift()!;
    console.log(
      `docker run → DNS answer: median ${median(times).toFixed(0)} ms, ` +
        `worst ${Math.max(...times).toFixed(0)} ms (20 runs: ${
          times.map((t) => t.toFixed(0)).join(", ")
        }; warm-up run right after agent start: ${warmup.toFixed(0)} ms)`,
    );
  } finally {
    await removeContainers(names);
    await agent.stop();
  }
}
