/**
 * The ACME figure of `deno task bench https`: the time from `docker run` of a service labelled
 * `berth.tls=acme` to a valid certificate for its name being served by the HTTPS listener of
 * every member of a 3-member cluster: the ACME tests' cluster and pebble (test/acme_cluster.ts:
 * `PEBBLE_VA_NOSLEEP=1`, no validation delay; pebble resolves names with berth's own DNS and
 * validates HTTP-01 on the port all members' plain proxies share, each on its own 127.0.0.x).
 * "Valid" means the chain a member serves for the name verifies up to pebble's root and names
 * it (node:tls). Several rounds, a new name each; every member is polled every 10 ms. Also
 * printed: when the route first answered on plain HTTP (the registration's share of the time).
 *
 * @module
 */
import { type AgentProc, proxyGet, runWeb, uniq } from "../../test/harness.ts";
import { acmeCluster, EDGE } from "../../test/acme_cluster.ts";
import { probeTls } from "../../test/https_client.ts";
import { waitFor } from "../../test/wait.ts";
import { median } from "./_shared.ts";

/** Services run (and names ordered), one after the other. */
const ACME_ROUNDS = 3;
/** How long one round may take before the part fails. */
const ROUND_TIMEOUT_MS = 90_000;

/** Resolves with the ms from `t0` once `a` serves a chain for `name` that `root` verifies. */
function untilValid(a: AgentProc, name: string, root: string, t0: number): Promise<number> {
  return waitFor(`${a.node} to serve a valid certificate for ${name}`, async () => {
    const served = await probeTls(a.host, a.httpsPort, { servername: name, ca: [root] });
    return served.authorized ? performance.now() - t0 : undefined;
  }, { timeoutMs: ROUND_TIMEOUT_MS, intervalMs: 10 });
}

/** Resolves with the ms from `t0` once `a`'s plain HTTP proxy routes `name` (a 200). */
function untilRouted(a: AgentProc, name: string, t0: number): Promise<number> {
  return waitFor(`${a.node} to route ${name}`, async () => {
    const r = await proxyGet(a.proxyPort, name, "/", a.host);
    return r.status === 200 ? performance.now() - t0 : undefined;
  }, { timeoutMs: ROUND_TIMEOUT_MS, intervalMs: 10 });
}

/** Runs the rounds and prints one line; throws when a round fails (members' logs printed). */
export async function benchAcmeIssue(): Promise<void> {
  const c = await acmeCluster({ plain: true, docker: true });
  try {
    const root = await Deno.readTextFile(c.root);
    const rounds: number[][] = [];
    const routes: number[] = [];
    for (let round = 1; round <= ACME_ROUNDS; round++) {
      const name = `${uniq("r")}.${EDGE}`;
      const t0 = performance.now();
      c.containers.push(
        await runWeb({
          body: "hello from acme",
          labels: { "berth.http.host": name, "berth.tls": "acme" },
        }),
      );
      const routed = untilRouted(c.members[0], name, t0);
      rounds.push(await Promise.all(c.members.map((m) => untilValid(m, name, root, t0))));
      routes.push(await routed);
    }
    const lastMember = rounds.map((r) => Math.max(...r));
    console.log(
      `https ACME: docker run of a berth.tls=acme service → a certificate from pebble ` +
        `(no validation delay) served by all 3 members: median ${
          median(lastMember).toFixed(0)
        } ms over ${ACME_ROUNDS} runs (` +
        rounds.map((r) => `${r.map((x) => x.toFixed(0)).join("/")} ms`).join(", ") +
        `; per member); the route answered plain HTTP after a median ${
          median(routes).toFixed(0)
        } ms`,
    );
  } catch (e) {
    c.dump();
    throw e;
  } finally {
    await c.close();
  }
}
