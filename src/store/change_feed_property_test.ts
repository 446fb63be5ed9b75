import assert from "node:assert/strict";
import fc from "fast-check";
import { type Change, type Command, type Instance, type NodeInfo, Store } from "./mod.ts";
import { applyAll, catalogCommands } from "./_catalog_arbitrary.ts";

/** The rows a view keeps, folded from the feed. */
interface Rows {
  instances: Map<string, Instance>;
  nodes: Map<string, NodeInfo>;
}

function rowsOf(s: Store): Rows {
  return {
    instances: new Map(s.instances().map((i) => [i.id, i])),
    nodes: new Map(s.nodes().map((n) => [n.name, n])),
  };
}

/**
 * Applies one change to `rows`: each delta's `before` must be what the rows hold, and the
 * services a change names must cover every instance it changed, and every instance on a node
 * it changed.
 */
function fold(rows: Rows, c: Change, s: Store): void {
  if (c.reset) {
    Object.assign(rows, rowsOf(s));
    return;
  }
  for (const d of c.instances) {
    assert.deepEqual(d.before, rows.instances.get(d.id) ?? null, `before of ${d.id} at ${c.index}`);
    assert.notDeepEqual(d.before, d.after, `a delta changes something (${d.id})`);
    for (const row of [d.before, d.after]) {
      if (row !== null) assert.ok(c.services.has(row.service), `${row.service} at ${c.index}`);
    }
    if (d.after === null) rows.instances.delete(d.id);
    else rows.instances.set(d.id, d.after);
  }
  for (const d of c.nodes) {
    assert.deepEqual(d.before, rows.nodes.get(d.name) ?? null, `before of ${d.name} at ${c.index}`);
    assert.notDeepEqual(d.before, d.after, `a delta changes something (${d.name})`);
    if (d.after === null) rows.nodes.delete(d.name);
    else rows.nodes.set(d.name, d.after);
    // Its liveness and checks are part of its instances' health, its address and meta of
    // their catalog entries: every service on the node changed.
    for (const i of rows.instances.values()) {
      if (i.node === d.name) assert.ok(c.services.has(i.service), `${i.service} of ${d.name}`);
    }
  }
}

/** Applies `cmds` in entries of 1-3 (one change per applyMany), from the next index. */
function applyGrouped(s: Store, cmds: readonly Command[], sizes: readonly number[]): void {
  let at = 0;
  for (let k = 0; at < cmds.length; k++) {
    const n = Math.min(sizes[k % sizes.length]!, cmds.length - at);
    s.applyMany(
      cmds.slice(at, at + n).map((command, j) => ({
        index: s.appliedIndex() + 1 + j,
        command,
      })),
    );
    at += n;
  }
}

Deno.test("Change feed: folding every delta onto the rows at subscribe time gives the store's rows", () => {
  fc.assert(
    fc.property(
      catalogCommands({ maxLength: 20 }),
      catalogCommands({ maxLength: 60 }),
      fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 5 }),
      (prefix, cmds, sizes) => {
        const s = Store.open(":memory:");
        try {
          applyAll(s, prefix);
          const rows = rowsOf(s);
          // The feed logs what a subscriber throws and goes on: keep it to fail the run.
          const failed: unknown[] = [];
          s.subscribe((c) => {
            try {
              fold(rows, c, s);
            } catch (e) {
              failed.push(e);
            }
          });
          applyGrouped(s, cmds, sizes);
          if (failed.length > 0) throw failed[0];
          assert.deepEqual(rows, rowsOf(s));
        } finally {
          s.close();
        }
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("catalogCommands() are mostly valid and change instances, nodes and checks", () => {
  const s = Store.open(":memory:");
  const cmds = fc.sample(catalogCommands({ minLength: 40, maxLength: 40 }), {
    numRuns: 10,
    seed: 1,
  })
    .flat();
  const results = applyAll(s, cmds);
  const ok = results.filter((r) => r.ok).length;
  assert.ok(ok > results.length * 0.8, `${ok} of ${results.length} applied`);
  assert.ok(s.instances().length > 0);
  assert.ok(s.nodes().length > 0);
  const types = new Set(cmds.map((c) => c.type));
  for (const t of ["register", "deregister", "check", "docker", "batch", "check.register"]) {
    assert.ok(types.has(t as Command["type"]), t);
  }
  s.close();
});
