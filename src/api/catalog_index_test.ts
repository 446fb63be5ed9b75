import assert from "node:assert/strict";
import fc from "fast-check";
import { checksOfNode, type Command, instanceChecks, type NodeInfo, Store } from "../store/mod.ts";
import { applyAll, catalogCommands } from "../store/_catalog_arbitrary.ts";
import { CatalogIndex, scanInstancesByStatus, scanWithCheckStatus } from "./catalog_index.ts";
import { fixture } from "./_testing.ts";
import { consulCheck, nodeLookup } from "./consul_shapes.ts";
import { sleep } from "../../test/wait.ts";

/** The index's answers, and the same questions answered by reading every instance. */
function answers(index: CatalogIndex, store: Store) {
  return {
    index: {
      services: [...index.services()],
      count: index.serviceCount(),
      byStatus: index.instancesByStatus(),
      warning: [...index.withCheckStatus("warning")].sort(),
      critical: [...index.withCheckStatus("critical")].sort(),
    },
    scan: {
      services: [...store.services()].sort(([a], [b]) => a < b ? -1 : 1),
      count: store.services().size,
      byStatus: scanInstancesByStatus(store),
      warning: [...scanWithCheckStatus(store, "warning")].sort(),
      critical: [...scanWithCheckStatus(store, "critical")].sort(),
    },
  };
}

type Step = { cmd: Command } | { reset: true } | { tick: true };

const steps: fc.Arbitrary<Step[]> = fc.tuple(
  catalogCommands({ maxLength: 40 }),
  fc.array(fc.tuple(fc.nat(), fc.constantFrom<Step>({ reset: true }, { tick: true })), {
    maxLength: 8,
  }),
).map(([cmds, extra]) => {
  const out: Step[] = cmds.map((cmd) => ({ cmd }));
  for (const [at, s] of extra) out.splice(at % (out.length + 1), 0, s);
  return out;
});

Deno.test("CatalogIndex kept by the change feed answers as reading every instance, after random commands, resets and rebuilds in pages", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await fc.assert(
      fc.asyncProperty(steps, fc.constantFrom(1, 3, 2000), async (run, pageSize) => {
        const store = Store.open(":memory:");
        const index = new CatalogIndex(store, { pageSize });
        try {
          let listed = JSON.stringify([...index.services()]);
          let servicesIndex = index.servicesIndex();
          for (const s of run) {
            const wasReady = index.ready;
            if ("cmd" in s) applyAll(store, [s.cmd]);
            else if ("tick" in s) await sleep(0);
            else {
              // A snapshot install: the index rebuilds (in pages of `pageSize`), while the
              // next commands apply.
              await store.writeSnapshotFile(`${dir}/snap`, "raft");
              store.installSnapshotFile(`${dir}/snap`);
            }
            if (index.ready) {
              const a = answers(index, store);
              assert.deepEqual(a.index, a.scan);
            }
            // The list's index moves exactly when the list does, and never backwards.
            const now = JSON.stringify([...index.services()]);
            if ("cmd" in s && wasReady && index.ready) {
              assert.equal(
                index.servicesIndex(),
                now === listed ? servicesIndex : store.appliedIndex(),
              );
            }
            assert.ok(index.servicesIndex() >= servicesIndex);
            assert.ok(index.servicesIndex() <= store.appliedIndex() || store.appliedIndex() === 0);
            listed = now;
            servicesIndex = index.servicesIndex();
          }
          while (!index.ready) await sleep(0);
          const a = answers(index, store);
          assert.deepEqual(a.index, a.scan);
        } finally {
          index.close();
          store.close();
        }
      }),
      { numRuns: 150 },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CatalogIndex answers from the store while a rebuild reads its pages", async () => {
  const store = Store.open(":memory:");
  const index = new CatalogIndex(store, { pageSize: 2 });
  const dir = await Deno.makeTempDir();
  try {
    for (let k = 0; k < 7; k++) {
      applyAll(store, [{
        type: "register",
        instance: {
          id: `web-${k}`,
          service: k % 2 === 0 ? "web" : "api",
          node: "n1",
          address: "10.0.0.1",
          port: 80 + k,
          tags: [`t${k % 3}`],
          meta: {},
          weight: 1,
          containerId: null,
          httpHosts: [],
          httpPath: null,
          tcpPort: null,
          check: null,
          docker: null,
          checkResult: { status: k === 3 ? "critical" : "passing", output: "" },
        },
      }]);
    }
    await store.writeSnapshotFile(`${dir}/snap`, "raft");
    store.installSnapshotFile(`${dir}/snap`);
    assert.equal(index.ready, false);
    // Meanwhile: web-0 (read already) and web-6 (not yet) change.
    applyAll(store, [{ type: "check", id: "web-0", status: "warning", output: "slow" }]);
    applyAll(store, [{ type: "deregister", id: "web-6" }]);
    let a = answers(index, store);
    assert.deepEqual(a.index, a.scan);
    while (!index.ready) await sleep(0);
    a = answers(index, store);
    assert.deepEqual(a.index, a.scan);
    assert.deepEqual(a.index.byStatus, { passing: 4, warning: 1, critical: 1 });
    assert.deepEqual(a.index.services, [["api", ["t0", "t1", "t2"]], ["web", ["t0", "t1", "t2"]]]);
  } finally {
    index.close();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** /v1/health/state/:state as it was computed before the index: every node's checks. */
function stateByScan(store: Store, state: string) {
  const rows: { check: ReturnType<typeof consulCheck>; node: string }[] = [];
  const known = new Set<string>();
  const add = (views: ReturnType<typeof checksOfNode>, n: Pick<NodeInfo, "name">) => {
    for (const v of views) {
      if (state === "any" || v.status === state) rows.push({ check: consulCheck(v), node: n.name });
    }
  };
  for (const n of store.nodes()) {
    known.add(n.name);
    add(checksOfNode(store, n.name), n);
  }
  const node = nodeLookup([]);
  for (const i of store.instances()) {
    if (!known.has(i.node)) add(instanceChecks(i, undefined), node(i.node, i.address));
  }
  return rows.map((r) => r.check);
}

Deno.test("GET /v1/health/state/:state answers as scanning every node's checks, after random commands", async () => {
  await fc.assert(
    fc.asyncProperty(catalogCommands({ maxLength: 40 }), async (cmds) => {
      const f = fixture();
      try {
        applyAll(f.store, cmds);
        for (const state of ["any", "passing", "warning", "critical"]) {
          const r = await f.app.request(`/v1/health/state/${state}?stale`);
          assert.equal(r.status, 200);
          assert.deepEqual(await r.json(), stateByScan(f.store, state));
        }
      } finally {
        f.close();
      }
    }),
    { numRuns: 100 },
  );
});
