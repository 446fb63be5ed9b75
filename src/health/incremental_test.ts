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
import { NodeItems } from "./node_items.ts";
import { instance } from "./_testing.ts";

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
      fc.constantFrom(1, 2, 3, 4096),
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

Deno.test("HealthChecker over checksMax looks at its first checks again only for rows at or before the last one it runs", async () => {
  const store = Store.open(":memory:");
  const apply = (c: Command) => assert.deepEqual(applyAll(store, [c]), [{ ok: true }]);
  for (const name of ["n1", "n2"]) {
    apply({ type: "node.register", name, address: "127.0.0.1", meta: {} });
  }
  const http = (intervalMs = 1000) => ({ http: "/health", intervalMs, timeoutMs: 500 });
  const register = (id: string, node = "n1", intervalMs = 1000) =>
    apply({ type: "register", instance: instance(id, node, 8000, http(intervalMs)) });
  const registered: RegisteredCheck = {
    id: "c-ready",
    name: "ready",
    notes: "",
    kind: "http",
    target: "http://127.0.0.1:8001/ready",
    ttlMs: 0,
    intervalMs: 1000,
    timeoutMs: 500,
    deregisterCriticalAfterMs: 0,
    status: "critical",
    output: "",
  };
  for (const id of ["a", "c", "e", "f"]) register(id);
  // c has two checks: its own, then c-ready. checksMax 2: a and c's own run; c is the boundary.
  apply({ type: "check.register", node: "n1", serviceId: "c", check: registered });
  const live = checker(store, "n1", 2);
  live.start();
  let walks = 0;
  const first = NodeItems.prototype.first;
  NodeItems.prototype.first = function (this: NodeItems<{ id: string }>, max: number) {
    walks++;
    return first.call(this, max);
  };
  const same = async () => {
    const fresh = checker(store, "n1", 2);
    fresh.start();
    assert.deepEqual(live.checks(), fresh.checks());
    await fresh.close();
    walks--; // the fresh one's
  };
  const ids = () => live.checks().map((c) => c.id);
  try {
    assert.deepEqual(ids(), ["a", "c"]);
    register("z", "n2"); // another node's row
    register("f", "n1", 5000); // after c
    register("g"); // after c
    apply({ type: "check", id: "e", status: "passing", output: "ok" });
    assert.equal(walks, 0, "a row after the boundary, or of another node, re-walked the first");
    await same();
    // c's own check changes: it restarts with the new interval.
    register("c", "n1", 7000);
    assert.deepEqual(live.checks().map((c) => [c.id, c.intervalMs]), [["a", 1000], ["c", 7000]]);
    await same();
    register("b"); // before c: c no longer runs
    assert.deepEqual(ids(), ["a", "b"]);
    await same();
    apply({ type: "deregister", id: "a" });
    assert.deepEqual(ids(), ["b", "c"]);
    await same();
    walks = 0;
    for (const id of ["e", "f", "g"]) apply({ type: "deregister", id });
    assert.equal(walks, 0);
    // Back to b, c and c-ready; c-ready goes: two left, both run.
    apply({ type: "check.deregister", node: "n1", id: "c-ready" });
    assert.deepEqual(ids(), ["b", "c"]);
    await same();
    register("h");
    assert.deepEqual(ids(), ["b", "c"]);
    await same();
  } finally {
    NodeItems.prototype.first = first;
    await live.close();
    store.close();
  }
});
