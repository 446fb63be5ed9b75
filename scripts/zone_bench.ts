/**
 * What the DNS zone view costs, in process (no sockets but the DNS server's own): the time to
 * apply one change's deltas with 100 and with `--instances` instances in the catalog (1,000
 * services, 100 nodes), the chunked rebuild at that size (total, worst slice, worst lateness of a
 * 1 ms timer meanwhile), the heap the zone holds per instance, and whether DNS answers of
 * unrelated names stay cached through a registration storm on one service. Prints figures
 * (wall and process CPU time: on a shared machine wall times include waits for a core);
 * asserts nothing.
 *
 *     deno run -A --v8-flags=--expose-gc scripts/zone_bench.ts [--instances 100000]
 *
 * @module
 */
import { type Change, type Command, type InstanceSpec, Store } from "../src/store/mod.ts";
import { DnsServer } from "../src/dns/server.ts";
import { REBUILD_SLICE, type Zone, ZoneView } from "../src/dns/mod.ts";
import type { ZoneSource } from "../src/dns/zone_view.ts";
import { zoneDelta } from "../src/dns/zone_delta.ts";
import { apiInstanceSpec } from "../test/fixtures.ts";
import { errorText } from "../src/lib/error_text.ts";
import { parseFlags, parseIntIn } from "../src/lib/flags.ts";
import { cpuUsage } from "node:process";
// @ts-types="../test/dns_packet.d.ts"
import * as packet from "dns-packet";

const SERVICES = 1000;
const NODES = 100;
const CHANGES = 2000;
const ZONE = { domain: "berth.", edgeDomain: "edge.example.", ttl: 0 };

function spec(n: number, over: Partial<InstanceSpec> = {}): InstanceSpec {
  return apiInstanceSpec({
    id: `i-${String(n).padStart(7, "0")}`,
    service: `svc-${n % SERVICES}`,
    node: `host-${n % NODES}`,
    address: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
    port: 8000 + (n % 50),
    tags: [["v1"], ["v2", "primary"], ["v1", "canary"]][n % 3]!,
    ...over,
  });
}

/** An in-memory store with the nodes and `count` instances, registered in batches of 1000. */
function filled(count: number): Store {
  const store = Store.open(":memory:");
  let index = 0;
  const apply = (c: Command) => {
    const r = store.apply(++index, c);
    if (!r.ok) throw new Error(`apply: ${r.error}`);
  };
  for (let n = 0; n < NODES; n++) {
    apply({
      type: "node.register",
      name: `host-${n}`,
      address: `192.168.${n >> 8}.${n & 255}`,
      meta: n % 10 === 0 ? { proxy: "true" } : {},
    });
  }
  for (let n = 0; n < count; n += 1000) {
    const commands: Command[] = [];
    for (let k = n; k < Math.min(count, n + 1000); k++) {
      commands.push({ type: "register", instance: spec(k) });
    }
    apply({ type: "batch", commands });
  }
  return store;
}

/** One-instance changes: a port moved, a check failed and passed, a deregistration and back. */
function changes(count: number, instances: number): Command[] {
  const out: Command[] = [];
  for (let k = 0; k < count; k++) {
    const n = (k * 7919) % instances;
    const id = spec(n).id;
    switch (k % 4) {
      case 0:
        out.push({ type: "register", instance: spec(n, { port: 9000 + k }) });
        break;
      case 1:
        out.push({ type: "check", id, status: "critical", output: "down" });
        break;
      case 2:
        out.push({ type: "check", id, status: "passing", output: "" });
        break;
      case 3:
        out.push({ type: "deregister", id });
        out.push({ type: "register", instance: spec(n) });
        break;
    }
  }
  return out;
}

/** Per-change cost of zoneDelta + Zone.apply, over changes recorded from the store's feed. */
function deltaCost(store: Store, zone: Zone, instances: number) {
  const seen: Change[] = [];
  const off = store.subscribe((c) => seen.push(c));
  for (const c of changes(CHANGES, instances)) {
    const r = store.apply(store.appliedIndex() + 1, c);
    if (!r.ok) throw new Error(`apply: ${r.error}`);
  }
  off();
  const times: number[] = [];
  const cpu = cpuUsage();
  for (const c of seen) {
    const t = performance.now();
    zone.apply(zoneDelta(c));
    times.push(performance.now() - t);
  }
  const used = cpuUsage(cpu);
  times.sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  return {
    mean,
    p99: times[Math.floor(times.length * 0.99)]!,
    max: times.at(-1)!,
    cpu: (used.user + used.system) / 1000 / times.length,
  };
}

/** Worst lateness of a 1 ms timer chain until `stop()`. */
function loopProbe(): { stop: () => number } {
  let worst = 0;
  let running = true;
  let due = performance.now() + 1;
  const tick = () => {
    const now = performance.now();
    worst = Math.max(worst, now - due);
    due = now + 1;
    if (running) setTimeout(tick, 1);
  };
  setTimeout(tick, 1);
  return {
    stop: () => {
      running = false;
      return worst;
    },
  };
}

function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  return Deno.memoryUsage().heapUsed;
}

const us = (ms: number) => `${(ms * 1000).toFixed(1)} µs`;

async function storm(store: Store, instances: number): Promise<void> {
  const server = new DnsServer({
    ...ZONE,
    store,
    listen: { host: "127.0.0.1", port: 0 },
    recursors: [],
  });
  await server.start();
  const q = (name: string, type: string) =>
    new Uint8Array(
      packet.encode({ type: "query", id: 1, flags: 0, questions: [{ name, type, class: "IN" }] }),
    );
  const unrelated = [
    ...Array.from({ length: 20 }, (_, i) => q(`svc-${i + 1}.service.berth`, "A")),
    ...Array.from({ length: 20 }, (_, i) => q(`v1.svc-${i + 21}.service.berth`, "SRV")),
    q("host-3.node.berth", "A"),
    q("x.edge.example", "A"),
  ];
  const stormName = q("svc-0.service.berth", "SRV");
  for (const m of unrelated) server.answer(m, true);
  const before = server.answerCounts;
  const times: number[] = [];
  for (let k = 0; k < 1000; k++) {
    const r = store.apply(store.appliedIndex() + 1, {
      type: "register",
      instance: spec(instances + k, { service: "svc-0" }),
    });
    if (!r.ok) throw new Error(`apply: ${r.error}`);
    for (const m of unrelated) {
      const t = performance.now();
      server.answer(m, true);
      times.push(performance.now() - t);
    }
    server.answer(stormName, true);
  }
  const after = server.answerCounts;
  times.sort((a, b) => a - b);
  console.log(
    `storm: 1000 registrations of svc-0, ${unrelated.length} unrelated names asked after each: ` +
      `${after.cached - before.cached} cached, ${after.built - before.built - 1000} built ` +
      `(svc-0 SRV: built each time); unrelated answer p50 ${us(times[times.length >> 1]!)}, ` +
      `p99 ${us(times[Math.floor(times.length * 0.99)]!)}`,
  );
  await server.close();
}

async function main(args: string[]): Promise<void> {
  const raw = parseFlags(args, [{ name: "instances", kind: "string" }], { positionals: false })
    .values.get("instances");
  let instances: number;
  try {
    instances = raw === undefined ? 100_000 : parseIntIn(raw, [1000, 1_000_000]);
  } catch (e) {
    throw new Error(`--instances ${raw}: ${errorText(e)}; expected an integer in 1000..1000000`);
  }
  for (const count of [100, instances]) {
    let t = performance.now();
    const store = filled(count);
    console.log(`${count} instances: store filled in ${(performance.now() - t).toFixed(0)} ms`);
    const heap0 = heapUsed();
    t = performance.now();
    const probe = loopProbe();
    const cpu = cpuUsage();
    // CPU between page reads: one slice each (the turn between them is idle), whatever waits
    // for a core a loaded machine adds to its wall time.
    const marks: number[] = [];
    const source: ZoneSource = {
      subscribe: (fn) => store.subscribe(fn),
      nodes: () => store.nodes(),
      appliedIndex: () => store.appliedIndex(),
      instancesPage: (after, limit) => {
        const u = cpuUsage();
        marks.push((u.user + u.system) / 1000);
        return store.instancesPage(after, limit);
      },
    };
    const view = new ZoneView({ store: source, zone: ZONE });
    marks.length = 0; // the constructor's look at the first slice
    await view.start();
    const used = cpuUsage(cpu);
    const end = cpuUsage();
    marks.push((end.user + end.system) / 1000);
    const sliceCpu = Math.max(...marks.slice(1).map((m, i) => m - marks[i]!));
    const worstPause = probe.stop();
    const built = performance.now() - t;
    const slices = Math.ceil(count / REBUILD_SLICE);
    const heap1 = heapUsed();
    console.log(
      `  rebuild: ${built.toFixed(0)} ms (CPU ${
        ((used.user + used.system) / 1000).toFixed(0)
      } ms, ${slices} slices), worst slice ${view.worstSliceMs.toFixed(1)} ms (CPU ${
        sliceCpu.toFixed(1)
      } ms), ` +
        `worst 1 ms timer lateness ${worstPause.toFixed(1)} ms; zone heap ` +
        `${((heap1 - heap0) / 2 ** 20).toFixed(1)} MiB (${
          ((heap1 - heap0) / count).toFixed(0)
        } B/instance)`,
    );
    const zone = view.zone;
    view.close();
    const d = deltaCost(store, zone, count);
    console.log(
      `  one change (zoneDelta + Zone.apply, ${CHANGES} one-instance changes): mean ${
        us(d.mean)
      } (CPU ${us(d.cpu)}), p99 ${us(d.p99)}, max ${us(d.max)}`,
    );
    if (count === instances) await storm(store, count);
    store.close();
  }
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(`zone_bench: ${errorText(e)}`);
    Deno.exit(1);
  }
}
