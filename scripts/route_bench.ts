/**
 * The proxy's route table at 100 and at 100,000 instances (1,000 services): per-request lookup
 * time, per-change update time (a delta applied in place) next to a full build from all rows
 * (what every change cost before), one change in a service of 10,000 instances, the heap the
 * table holds and the longest slice of a paged build. Prints figures, asserts nothing.
 *
 * ```sh
 * deno run -A --v8-flags=--expose-gc scripts/route_bench.ts [--instances 100000]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { Instance, InstanceDelta } from "../src/store/mod.ts";
import { buildRouteTable, RouteTable } from "../src/proxy/routes.ts";
import { ROUTE_SLICE_SIZE } from "../src/proxy/route_feed.ts";

const { values } = parseArgs({ options: { instances: { type: "string", default: "100000" } } });
const BIG = Number(values.instances);
const SERVICES_MAX = 1000;

function instance(k: number, services: number, over: Partial<Instance> = {}): Instance {
  const s = k % services;
  return {
    id: `n${k % 50}:svc-${s}-${k}:80`,
    service: `svc-${s}`,
    node: `n${k % 50}`,
    address: `10.0.0.${k % 50}`, // the node's: published ports (desired.ts)
    port: 8000 + (k % 100),
    tags: ["v1"],
    meta: s % 10 === 0 ? { "berth.lb": "least_conn" } : {},
    weight: 1,
    containerId: `c${k}`,
    httpHosts: [`svc-${s}.example.com`],
    httpPath: s % 4 === 0 ? `/api/${s}` : null,
    tcpPort: null,
    check: null,
    docker: { state: "running", detail: "" },
    checkResult: null,
    createIndex: k,
    modifyIndex: k,
    ...over,
  };
}

function rows(n: number): Instance[] {
  const services = Math.min(SERVICES_MAX, n);
  return Array.from({ length: n }, (_, k) => instance(k, services))
    .sort((a, b) => a.id < b.id ? -1 : 1);
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function perOp(label: string, n: number, fn: (k: number) => void): number {
  for (let k = 0; k < Math.min(n, 1000); k++) fn(k); // warm up
  const t0 = performance.now();
  for (let k = 0; k < n; k++) fn(k);
  const us = (performance.now() - t0) * 1000 / n;
  console.log(`  ${label}: ${us.toFixed(3)} µs`);
  return us;
}

function measure(n: number): void {
  const services = Math.min(SERVICES_MAX, n);
  console.log(`${n} instances in ${services} services:`);
  const all = rows(n);
  gc();
  const heap0 = Deno.memoryUsage().heapUsed;
  let t0 = performance.now();
  const table = buildRouteTable(all, []);
  const buildMs = performance.now() - t0;
  console.log(`  full build (what each change cost before): ${buildMs.toFixed(1)} ms`);
  gc();
  const heapMiB = (Deno.memoryUsage().heapUsed - heap0) / 2 ** 20;
  console.log(`  heap held by the table: ${heapMiB.toFixed(1)} MiB`);

  // Lookups: hosts of random services (a quarter of them routed on a path), and no route.
  const picks = Array.from({ length: 4096 }, (_, k) => (k * 7919) % services);
  const hosts = picks.map((s) => `svc-${s}.example.com`);
  const urls = picks.map((s) => `/api/${s}/x?y=1`);
  for (let k = 0; k < 4096; k++) table.match(hosts[k]!, urls[k]!); // routes made
  let hits = 0;
  perOp("lookup (Host + path)", 2_000_000, (k) => {
    if (table.match(hosts[k & 4095]!, urls[k & 4095]!) !== null) hits++;
  });
  if (hits !== 2_000_000 + 1000) throw new Error(`lookups missed: ${hits}`);
  perOp("lookup, no route (404)", 1_000_000, (k) => {
    if (table.match(k & 1 ? "other.example.com" : undefined, "/x") !== null) hits++;
  });

  // Changes: a new instance, its check failing then passing, its removal; each followed by a
  // lookup of its service (which makes the service's new route).
  const changes = 2000;
  const delta = (k: number): InstanceDelta[] => {
    const i = instance(n + k, services);
    const phase = k % 4;
    if (phase === 0) return [{ id: i.id, before: null, after: i }];
    if (phase === 3) return [{ id: i.id, before: i, after: null }];
    const status = phase === 1 ? "critical" as const : "passing" as const;
    return [{ id: i.id, before: i, after: { ...i, checkResult: { status, output: "" } } }];
  };
  const deltas = Array.from(
    { length: changes * 4 },
    (_, k) => delta(Math.floor(k / 4) * 4 + k % 4),
  );
  let at = 0;
  perOp(
    "change applied (delta)",
    changes,
    () => void table.apply(deltas[at++ % deltas.length]!, []),
  );
  at = 0;
  perOp("change applied + next lookup of its service", changes, () => {
    const d = deltas[at++ % deltas.length]!;
    table.apply(d, []);
    const s = d[0]!.after?.service ?? d[0]!.before!.service;
    if (table.match(`${s}.example.com`, `/api/${s.slice(4)}/x`) === null) throw new Error(s);
  });

  // A paged build (route_feed.ts): the longest page.
  const paged = new RouteTable();
  let worst = 0;
  t0 = performance.now();
  for (let k = 0; k < all.length; k += ROUTE_SLICE_SIZE) {
    const s0 = performance.now();
    paged.load(all.slice(k, k + ROUTE_SLICE_SIZE));
    worst = Math.max(worst, performance.now() - s0);
  }
  console.log(
    `  paged build: ${(performance.now() - t0).toFixed(1)} ms in pages of ${ROUTE_SLICE_SIZE}, ` +
      `longest page ${worst.toFixed(1)} ms`,
  );
  if (hits < 0) console.log(hits);
}

function bigService(size: number): void {
  console.log(`one service of ${size} instances:`);
  const all = Array.from({ length: size }, (_, k) => instance(k, 1)).sort((a, b) =>
    a.id < b.id ? -1 : 1
  );
  const table = buildRouteTable(all, []);
  let flip = false;
  const lookup = () => {
    if (table.match("svc-0.example.com", "/api/0/x")?.targets.length !== size - (flip ? 1 : 0)) {
      throw new Error("no route");
    }
  };
  const mid = all[size >> 1]!;
  const change = () => {
    flip = !flip;
    const after = {
      ...mid,
      checkResult: { status: flip ? "critical" as const : "passing" as const, output: "" },
    };
    table.apply([{ id: mid.id, before: mid, after }], []);
  };
  perOp("change to one instance (delta only)", 2000, change);
  perOp("change + next lookup (new targets array and balancer)", 2000, () => {
    change();
    lookup();
  });
  const added = instance(size, 1);
  perOp("instance added then removed (two deltas)", 2000, () => {
    table.apply([{ id: added.id, before: null, after: added }], []);
    table.apply([{ id: added.id, before: added, after: null }], []);
  });
}

console.log(
  `route table bench (deno ${Deno.version.deno}; gc ${
    "gc" in globalThis ? "exposed" : "not exposed: heap figures rough"
  })`,
);
measure(100);
measure(BIG);
bigService(10_000);
