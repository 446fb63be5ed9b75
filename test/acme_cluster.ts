/**
 * pebble and a 3-member cluster it issues to, for the ACME end-to-end tests
 * (test/e2e_acme_test.ts) and `deno task bench https` (scripts/bench/acme.ts): members on
 * 127.0.0.1/.2/.3 sharing one plain and one HTTPS proxy port (pebble validates on those),
 * pebble resolving names with member 1's DNS (`--edge-domain` answers the proxy members).
 *
 * @module
 */
import http from "node:http";
import {
  type AgentPorts,
  type AgentProc,
  apiJson,
  freePort,
  removeContainers,
  requireDocker,
  startAgent,
  stopAll,
  uniq,
} from "./harness.ts";
import { startPebble } from "./pebble.ts";
import { waitFor } from "./wait.ts";

/** The edge domain: names under it resolve to the proxy members. */
export const EDGE = "acme.test";
/** The members' addresses. */
export const HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];

/** A port free on every host (the members' plain and HTTPS proxies share one each). */
export async function portFreeOnAll(hosts: readonly string[]): Promise<number> {
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

/** pebble and a 3-member cluster it issues to, with a backend every service routes to. */
export interface AcmeCluster {
  pebble: Awaited<ReturnType<typeof startPebble>>;
  members: [AgentProc, AgentProc, AgentProc];
  httpsPort: number;
  /** pebble's root, as a file for curl. */
  root: string;
  backendPort: number;
  /** Containers to remove at the end. */
  containers: string[];
  close(): Promise<void>;
  /** Every member's and pebble's log, for a failure. */
  dump(): void;
}

/**
 * Starts pebble (asking member 1's DNS; validating HTTP-01 on the port every member's plain
 * proxy listens on, TLS-ALPN-01 on their shared HTTPS port) and three members, each on its own
 * 127.0.0.x. `plain: false` runs the members with `--proxy-http off` (TLS-ALPN-01 then).
 */
export async function acmeCluster(
  o: { plain: boolean; docker: boolean; certificateValiditySeconds?: number },
): Promise<AcmeCluster> {
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
  const pebble = await startPebble({
    dnsServer: `${HOSTS[0]}:${ports[0]!.dns}`,
    httpPort: proxyPort,
    tlsPort: httpsPort,
    env: { PEBBLE_VA_NOSLEEP: "1" },
    ...(o.certificateValiditySeconds === undefined
      ? {}
      : { certificateValiditySeconds: o.certificateValiditySeconds }),
  });
  const args = [
    "--edge-domain",
    EDGE,
    "--acme-directory",
    pebble.directoryUrl,
    "--acme-ca-cert",
    pebble.apiCaFile,
    "--acme-email",
    "ops@acme.test",
    ...(o.plain ? [] : ["--proxy-http", "off"]),
  ];
  const backend = http.createServer((_req, res) => res.end("hello from web\n"));
  await new Promise<void>((r) => backend.listen(0, "127.0.0.1", () => r()));
  const members: AgentProc[] = [];
  const containers: string[] = [];
  const close = async () => {
    await removeContainers(containers);
    await stopAll(members);
    await new Promise<void>((r) => backend.close(() => r()));
    await pebble.stop();
  };
  try {
    if (o.docker) await requireDocker();
    const root = `${Deno.makeTempDirSync({ prefix: "berth-acme-" })}/root.pem`;
    Deno.writeTextFileSync(root, await pebble.root());
    for (const [i, host] of HOSTS.entries()) {
      members.push(
        await startAgent({
          node: uniq(`acme${i + 1}-`),
          host,
          ports: ports[i],
          samePorts: true, // pebble validates on these, and asks member 1's DNS
          bootstrap: i === 0,
          join: i === 0 ? undefined : [members[0]!.clusterAddr],
          docker: o.docker && i === 0,
          args,
        }),
      );
    }
    await waitFor("three voters", async () => {
      const m = await apiJson(members[0]!, "/v1/berth/members?stale") as { role: string }[];
      return m.filter((x) => x.role === "voter").length === 3;
    }, { timeoutMs: 30_000 });
    return {
      pebble,
      members: members as [AgentProc, AgentProc, AgentProc],
      httpsPort,
      root,
      backendPort: (backend.address() as { port: number }).port,
      containers,
      close,
      dump: () => {
        for (const m of members) console.error(`--- ${m.node}\n${m.log().slice(-6000)}`);
        console.error(`--- pebble\n${pebble.log().slice(-6000)}`);
      },
    };
  } catch (e) {
    for (const m of members) console.error(`--- ${m.node}\n${m.log().slice(-6000)}`);
    await close();
    throw e;
  }
}
