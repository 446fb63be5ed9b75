import assert from "node:assert/strict";
import type { Command, InstanceSpec } from "../store/mod.ts";
import { Store } from "../store/mod.ts";
import { AWAITING_CHECK_OUTPUT } from "./desired.ts";
import { planReconcile, toBatches } from "./reconcile.ts";

function spec(id: string, over: Partial<InstanceSpec> = {}): InstanceSpec {
  return {
    id,
    service: "web",
    node: "h1",
    address: "10.0.0.5",
    port: 32768,
    tags: [],
    meta: { container: "web-1" },
    weight: 1,
    status: "passing",
    output: "",
    containerId: "c1",
    httpHosts: [],
    httpPath: null,
    tcpPort: null,
    check: null,
    ...over,
  };
}

/** A store plus a propose that applies through it, recording what was proposed. */
function world() {
  const store = Store.open(":memory:");
  const proposed: Command[] = [];
  const apply = (c: Command) => {
    proposed.push(c);
    const r = store.apply(store.appliedIndex() + 1, c);
    assert.ok(r.ok, JSON.stringify(r));
  };
  const sync = (desired: InstanceSpec[]) => {
    const plan = planReconcile(desired, store, { node: "h1" });
    for (const b of toBatches(plan.commands)) apply(b);
    return plan;
  };
  return { store, proposed, apply, sync };
}

Deno.test("planReconcile() registers, then proposes nothing when in sync", () => {
  const w = world();
  const desired = [spec("h1:web-1:80"), spec("h1:web-2:80", { containerId: "c2" })];
  const first = w.sync(desired);
  assert.deepEqual(first.commands.map((c) => c.type), ["register", "register"]);
  assert.deepEqual(w.store.instances().map((i) => i.id), ["h1:web-1:80", "h1:web-2:80"]);
  const second = w.sync(desired);
  assert.deepEqual(second.commands, []);
  assert.deepEqual(second.problems, []);
});

Deno.test("planReconcile() deregisters own Docker rows that are no longer desired", () => {
  const w = world();
  w.sync([spec("h1:web-1:80"), spec("h1:web-2:80", { containerId: "c2" })]);
  const plan = w.sync([spec("h1:web-1:80")]);
  assert.deepEqual(plan.commands, [{ type: "deregister", id: "h1:web-2:80" }]);
  assert.deepEqual(w.store.instances().map((i) => i.id), ["h1:web-1:80"]);
});

Deno.test("planReconcile() never touches other nodes' rows or API registrations", () => {
  const w = world();
  w.apply({ type: "register", instance: spec("h2:web-1:80", { node: "h2" }) });
  w.apply({ type: "register", instance: spec("h1-manual", { containerId: null }) });
  w.apply({ type: "register", instance: spec("h1:api:80", { containerId: null }) });
  const plan = w.sync([spec("h1:api:80")]);
  assert.deepEqual(plan.commands, []);
  assert.equal(plan.problems.length, 1);
  assert.match(plan.problems[0]!.message, /taken by an API registration/);
  assert.deepEqual(w.store.instances().map((i) => i.id), ["h1-manual", "h1:api:80", "h2:web-1:80"]);
  assert.equal(w.store.instance("h1:api:80")!.containerId, null);
});

Deno.test("planReconcile() sends a check command when only the status changes", () => {
  const w = world();
  w.sync([spec("h1:web-1:80")]);
  const plan = w.sync([spec("h1:web-1:80", { status: "critical", output: "container paused" })]);
  assert.deepEqual(plan.commands, [{
    type: "check",
    id: "h1:web-1:80",
    status: "critical",
    output: "container paused",
  }]);
  const moved = w.sync([
    spec("h1:web-1:80", { status: "critical", output: "container paused", port: 1 }),
  ]);
  assert.equal(moved.commands[0]!.type, "register");
});

Deno.test("planReconcile() keeps the health checker's status for instances with a check", () => {
  const w = world();
  const check = { http: "/health", intervalMs: 5000, timeoutMs: 1000 };
  const desired = spec("h1:web-1:80", { check, status: "critical", output: AWAITING_CHECK_OUTPUT });
  w.sync([desired]);
  assert.equal(w.store.instance("h1:web-1:80")!.output, AWAITING_CHECK_OUTPUT);
  // The health checker reports passing; the watcher must not undo it.
  w.apply({ type: "check", id: "h1:web-1:80", status: "passing", output: "HTTP 200" });
  assert.deepEqual(w.sync([desired]).commands, []);
  assert.equal(w.store.instance("h1:web-1:80")!.status, "passing");
  // Docker's own verdict still wins.
  w.sync([{ ...desired, output: "docker health: unhealthy" }]);
  assert.equal(w.store.instance("h1:web-1:80")!.output, "docker health: unhealthy");
  // Back to fine in Docker's eyes: the watcher's own output is not kept.
  w.sync([desired]);
  assert.equal(w.store.instance("h1:web-1:80")!.output, AWAITING_CHECK_OUTPUT);
  // A recreated container (new id) starts over.
  w.apply({ type: "check", id: "h1:web-1:80", status: "passing", output: "HTTP 200" });
  w.sync([{ ...desired, containerId: "c9" }]);
  assert.equal(w.store.instance("h1:web-1:80")!.output, AWAITING_CHECK_OUTPUT);
});

Deno.test("planReconcile() reports an invalid spec instead of proposing it", () => {
  const w = world();
  const plan = w.sync([spec("h1:web-1:80", { address: "" }), spec("h1:web-2:80")]);
  assert.deepEqual(plan.commands.map((c) => c.type), ["register"]);
  assert.equal(plan.problems.length, 1);
  assert.match(plan.problems[0]!.message, /cannot register h1:web-1:80/);
});

Deno.test("toBatches() chunks commands by the batch limit", () => {
  const cmds: Command[] = Array.from(
    { length: 5 },
    (_, i) => ({ type: "deregister", id: `x${i}` }),
  );
  const batches = toBatches(cmds, 2);
  assert.deepEqual(
    batches.map((b) => b.type === "batch" ? b.commands.length : -1),
    [2, 2, 1],
  );
  assert.deepEqual(toBatches([]), []);
});
