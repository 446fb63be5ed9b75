/**
 * What the catalog and health reads cost as the catalog grows: serves the API over HTTP on a
 * store file (one process, LocalCluster), loads 100 instances, times each read, grows the
 * catalog to N instances in 1,000 services over 10 nodes (1 in 50 critical), and times them
 * again. Prints p50/p99 per read at both sizes, and the cost per call of the full scans the
 * per-catalog reads did before the catalog index (src/api/catalog_index.ts). Figures, not
 * assertions.
 *
 * Usage: deno run -A scripts/api_latency.ts [N=100000] [--requests 200]
 *
 * @module
 */
import { type Command, type InstanceSpec, Store } from "../src/store/mod.ts";
import { LocalCluster } from "../src/cluster/testing.ts";
import { ApiServer } from "../src/api/mod.ts";
import { scanInstancesByStatus, scanWithCheckStatus } from "../src/api/catalog_index.ts";

const n = Number(Deno.args.find((a) => /^\d+$/.test(a)) ?? 100_000);
const at = Deno.args.indexOf("--requests");
const requests = at >= 0 ? Number(Deno.args[at + 1]) : 200;
const SERVICES = 1000;
const BATCH = 1000;

function spec(k: number): InstanceSpec {
  return {
    id: `svc-${k % SERVICES}-${k}`,
    service: `svc-${k % SERVICES}`,
    node: `n${k % 10}`,
    address: `10.0.${(k >> 8) & 255}.${k & 255}`,
    port: 20_000 + (k % 40_000),
    tags: k % 2 === 0 ? ["v1", "primary"] : ["v1"],
    meta: { version: "1" },
    weight: 1,
    containerId: null,
    httpHosts: [],
    httpPath: null,
    tcpPort: null,
    check: null,
    docker: null,
    checkResult: { status: k % 50 === 0 ? "critical" : "passing", output: "" },
  };
}

const dir = await Deno.makeTempDir({ prefix: "berth-api-latency-" });
const store = Store.open(`${dir}/store.db`);
const cluster = new LocalCluster(store, { node: "n0", address: "127.0.0.1:8300" });
const api = new ApiServer({
  store,
  cluster,
  node: "n0",
  advertise: "127.0.0.1",
  version: "bench",
  aclDefault: "allow",
  listen: { host: "127.0.0.1", port: 0 },
});
await api.start();
const base = `http://127.0.0.1:${api.address.port}`;
let loaded = 0;

async function load(upTo: number): Promise<void> {
  for (let k = 0; k < 10; k++) {
    await cluster.propose({
      type: "node.register",
      name: `n${k}`,
      address: `10.1.0.${k}`,
      meta: {},
    });
  }
  while (loaded < upTo) {
    const commands: Command[] = [];
    for (; loaded < upTo && commands.length < BATCH; loaded++) {
      commands.push({ type: "register", instance: spec(loaded) });
    }
    await cluster.propose({ type: "batch", commands });
  }
}

const READS = [
  "/v1/catalog/services",
  "/v1/catalog/service/svc-7",
  "/v1/health/service/svc-7?passing",
  "/v1/health/state/critical",
  "/metrics",
];

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function time(path: string): Promise<string> {
  const ms: number[] = [];
  for (let r = 0; r < requests; r++) {
    const t0 = performance.now();
    const res = await fetch(`${base}${path}${path.includes("?") ? "&" : "?"}stale`);
    await res.arrayBuffer();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return `p50 ${pct(ms, 0.5).toFixed(2)} ms, p99 ${pct(ms, 0.99).toFixed(2)} ms`;
}

function scanCost(what: string, fn: () => unknown): string {
  const t0 = performance.now();
  const rounds = 5;
  for (let r = 0; r < rounds; r++) fn();
  return `${what}: ${((performance.now() - t0) / rounds).toFixed(1)} ms`;
}

for (const size of [100, n]) {
  await load(size);
  console.log(`${size} instances (${requests} sequential requests each, HTTP, ?stale):`);
  for (const path of READS) console.log(`  ${path.padEnd(36)} ${await time(path)}`);
  console.log("  before the catalog index, per request:");
  console.log(`    ${scanCost("store.services() (/v1/catalog/services)", () => store.services())}`);
  console.log(`    ${scanCost("status counts (/metrics)", () => scanInstancesByStatus(store))}`);
  console.log(
    `    ${
      scanCost("instances with a critical check", () => scanWithCheckStatus(store, "critical"))
    }`,
  );
}

await api.close();
await cluster.close();
store.close();
await Deno.remove(dir, { recursive: true });
