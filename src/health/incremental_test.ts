import assert from "node:assert/strict";
import fc from "fast-check";
import type { Proposed } from "../cluster/types.ts";
import { type Command, type RegisteredCheck, Store } from "../store/mod.ts";
import {
  applyAll,
  ARB_CHECK_IDS,
  ARB_INSTANCE_IDS,
  ARB_NODES,
  catalogCommands,
} from "../store/_catalog_arbitrary.ts";
import { CheckTimers } from "./check_timers.ts";
import { HealthChecker } from "./checker.ts";
import type { Timers } from "./probe.ts";

/** Timers that never fire: what is armed is compared, nothing runs. */
const IDLE_TIMERS: Timers = { setTimeout: () => ({}), clearTimeout: () => {} };
const NEVER = (): Promise<Proposed> => new Promise(() => {});

/**
 * Registered checks the shared arbitrary does not make (it registers TTL and reported ones):
 * HTTP/TCP checks the checker runs, and checks with a deregister deadline CheckTimers times.
 */
const activeCheck: fc.Arbitrary<Command> = fc.record({
  node: fc.constantFrom(...ARB_NODES),
  serviceId: fc.option(fc.constantFrom(...ARB_INSTANCE_IDS), { freq: 2 }),
  id: fc.constantFrom(...ARB_CHECK_IDS, "probe"),
  kind: fc.constantFrom("http" as const, "tcp" as const, "ttl" as const),
  intervalMs: fc.constantFrom(1000, 5000),
  deregisterCriticalAfterMs: fc.constantFrom(0, 60_000),
  status: fc.constantFrom("passing" as const, "critical" as const),
}).map((r): Command => {
  const check: RegisteredCheck = {
    id: r.id,
    name: `check ${r.id}`,
    notes: "",
    kind: r.kind,
    target: r.kind === "http"
      ? "http://127.0.0.1:8500/ready"
      : r.kind === "tcp"
      ? "127.0.0.1:22"
      : "",
    ttlMs: r.kind === "ttl" ? 30_000 : 0,
    intervalMs: r.kind === "ttl" ? 0 : r.intervalMs,
    timeoutMs: r.kind === "ttl" ? 0 : 500,
    deregisterCriticalAfterMs: r.deregisterCriticalAfterMs,
    status: r.status,
    output: "",
  };
  return { type: "check.register", node: r.node, serviceId: r.serviceId, check };
});

const commands = fc.tuple(
  catalogCommands({ maxLength: 40 }),
  fc.array(activeCheck, { maxLength: 20 }),
  fc.array(fc.nat(), { maxLength: 20 }),
).map(([cmds, extra, at]) => {
  const out = [...cmds];
  extra.forEach((c, n) => out.splice((at[n] ?? 0) % (out.length + 1), 0, c));
  return out;
});

function checker(store: Store, node: string, checksMax: number): HealthChecker {
  return new HealthChecker({
    store,
    propose: NEVER,
    node,
    checksMax,
    log: () => {},
    timers: IDLE_TIMERS,
    random: () => 0,
  });
}

function timers(store: Store, node: string): CheckTimers {
  return new CheckTimers({ store, propose: NEVER, node, log: () => {}, timers: IDLE_TIMERS });
}

Deno.test("HealthChecker and CheckTimers kept by the change feed equal a fresh start, after random command sequences", async () => {
  await fc.assert(
    fc.asyncProperty(
      commands,
      fc.constantFrom(...ARB_NODES),
      fc.constantFrom(1, 2, 4096),
      async (cmds, node, checksMax) => {
        const store = Store.open(":memory:");
        const live = checker(store, node, checksMax);
        const liveTimers = timers(store, node);
        live.start();
        liveTimers.start();
        try {
          for (const cmd of cmds) {
            applyAll(store, [cmd]);
            const fresh = checker(store, node, checksMax);
            const freshTimers = timers(store, node);
            fresh.start();
            freshTimers.start();
            assert.deepEqual(live.checks(), fresh.checks());
            assert.deepEqual(liveTimers.watching(), freshTimers.watching());
            await fresh.close();
            freshTimers.close();
          }
        } finally {
          await live.close();
          liveTimers.close();
          store.close();
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("HealthChecker and CheckTimers read no instance list on a change, only at start and on a reset", async () => {
  const store = Store.open(":memory:");
  let lists = 0;
  const instancesOfNode = store.instancesOfNode.bind(store);
  store.instancesOfNode = (node) => {
    lists++;
    return instancesOfNode(node);
  };
  const live = checker(store, "n1", 4096);
  const liveTimers = timers(store, "n1");
  live.start();
  liveTimers.start();
  assert.equal(lists, 2);
  for (let k = 0; k < 50; k++) {
    applyAll(store, [{
      type: "register",
      instance: {
        id: `web-${k}`,
        service: "web",
        node: "n1",
        address: "127.0.0.1",
        port: 8000 + k,
        tags: [],
        meta: {},
        weight: 1,
        containerId: null,
        httpHosts: [],
        httpPath: null,
        tcpPort: null,
        check: { http: "/health", intervalMs: 1000, timeoutMs: 500 },
        docker: null,
        checkResult: null,
      },
    }, { type: "check", id: `web-${k}`, status: "passing", output: "ok" }]);
    // Lets anything the change scheduled run (the checker used to rescan in a microtask).
    await Promise.resolve();
  }
  applyAll(store, [{ type: "node.status", name: "n1", status: "down" }]);
  assert.equal(lists, 2);
  assert.equal(live.checks().length, 50);
  // A restore or a snapshot install (a reset) reads the list again.
  const dir = await Deno.makeTempDir();
  try {
    await store.writeSnapshotFile(`${dir}/snap`, "raft");
    store.installSnapshotFile(`${dir}/snap`);
    assert.equal(lists, 4);
    assert.equal(live.checks().length, 50);
  } finally {
    await live.close();
    liveTimers.close();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
