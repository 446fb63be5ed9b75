/**
 * The ACME figure of `deno task bench https`: the time from `docker run` of a service labelled
 * `berth.tls=acme` to a valid certificate for its name being served by the HTTPS listener of
 * every member of a 3-member cluster. The CA is pebble (test/pebble.ts, the fixture the ACME
 * tests use; `PEBBLE_VA_NOSLEEP=1`: no validation delay), resolving names with berth's own DNS
 * (`--edge-domain`: the name answers the proxy members) and validating HTTP-01 on the port all
 * members' plain proxies share (each on its own 127.0.0.x). "Valid" means the chain a member
 * serves for the name verifies up to pebble's root and names it (node:tls). Several rounds, a
 * new name each; every member is polled every 10 ms. Also printed: when the route first
 * answered on plain HTTP (the registration's share of the time).
 *
 * @module
 */
import {
  type AgentPorts,
  type AgentProc,
  apiJson,
  freePort,
  proxyGet,
  removeContainers,
  requireDocker,
  runWeb,
  startAgent,
  stopAll,
  uniq,
} from "../../test/harness.ts";
import { startPebble } from "../../test/pebble.ts";
import { probeTls } from "../../test/https_client.ts";
import { waitFor } from "../../test/wait.ts";
import { median } from "./_shared.ts";

const EDGE = "acme.test";
const HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
/** Services run (and names ordered), one after the other. */
const ACME_ROUNDS = 3;
/** How long one round may take before the part fails. */
const ROUND_TIMEOUT_MS = 90_000;

/** A port free on every host (the members' plain and HTTPS proxies share one each). */
async function portFreeOnAll(hosts: readonly string[]): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await freePort(hosts[0]);
    try {
      for (const h of hosts.slice(1)) Deno.listen({ hostname: h, port }).close();
      return port;
    } catch {
      // taken on another host: try again
    }
  }
  throw new Error("no port free on every member's address");
}

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

/** Runs the rounds and prints one line; throws when a round fails. */
export async function benchAcmeIssue(): Promise<void> {
  await requireDocker();
  const proxyPort = await portFreeOnAll(HOSTS);
  const httpsPort = await portFreeOnAll(HOSTS);
  const ports: AgentPorts[] = [];
  for (const h of HOSTS) {
    ports.push({
      http: await freePort(h),
      dns: await freePort(h),
      proxy: proxyPort,
      https: httpsPort,
      bind: await freePort(h),
    });
  }
  await using pebble = await startPebble({
    dnsServer: `${HOSTS[0]}:${ports[0]!.dns}`,
    httpPort: proxyPort,
    tlsPort: httpsPort,
    env: { PEBBLE_VA_NOSLEEP: "1" },
  });
  const args = [
    ...["--edge-domain", EDGE, "--acme-directory", pebble.directoryUrl],
    ...["--acme-ca-cert", pebble.apiCaFile, "--acme-email", "ops@acme.test"],
  ];
  const members: AgentProc[] = [];
  const containers: string[] = [];
  try {
    for (const [i, host] of HOSTS.entries()) {
      members.push(
        await startAgent({
          node: uniq(`bench-acme${i + 1}-`),
          host,
          ports: ports[i],
          bootstrap: i === 0,
          join: i === 0 ? undefined : [members[0]!.clusterAddr],
          docker: i === 0,
          args,
        }),
      );
    }
    await waitFor("three voters", async () => {
      const m = await apiJson(members[0]!, "/v1/berth/members?stale") as { role: string }[];
      return m.filter((x) => x.role === "voter").length === 3;
    }, { timeoutMs: 30_000 });
    const root = await pebble.root();
    const rounds: number[][] = [];
    const routes: number[] = [];
    for (let round = 1; round <= ACME_ROUNDS; round++) {
      const name = `${uniq("r")}.${EDGE}`;
      const t0 = performance.now();
      containers.push(
        await runWeb({
          body: "hello from acme",
          labels: { "berth.http.host": name, "berth.tls": "acme" },
        }),
      );
      const routed = untilRouted(members[0]!, name, t0);
      rounds.push(await Promise.all(members.map((m) => untilValid(m, name, root, t0))));
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
    const logs = members.map((m) => `--- ${m.node}\n${m.log().slice(-3000)}`).join("\n");
    throw new Error(
      `${e instanceof Error ? e.message : e}\n${logs}\n--- pebble\n${pebble.log().slice(-3000)}`,
    );
  } finally {
    await removeContainers(containers);
    await stopAll(members);
  }
}
