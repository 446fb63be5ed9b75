import assert from "node:assert/strict";
import type { Command, InstanceSpec } from "../store/mod.ts";
import { instanceHealth, Store } from "../store/mod.ts";
import { planReconcile, storeReader, toBatches } from "./reconcile.ts";

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
    containerId: "c1",
    httpHosts: [],
    httpPath: null,
    tcpPort: null,
    check: null,
    docker: { state: "running", detail: "" },
    checkResult: null,
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
    const plan = planReconcile(desired, storeReader(store, "h1"), { node: "h1" });
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
  w.apply({ type: "register", instance: spec("h1-manual", { containerId: null, docker: null }) });
  w.apply({ type: "register", instance: spec("h1:api:80", { containerId: null, docker: null }) });
  const plan = w.sync([spec("h1:api:80")]);
  assert.deepEqual(plan.commands, []);
  assert.equal(plan.problems.length, 1);
  assert.match(plan.problems[0]!.message, /taken by an API registration/);
  assert.deepEqual(w.store.instances().map((i) => i.id), ["h1-manual", "h1:api:80", "h2:web-1:80"]);
  assert.equal(w.store.instance("h1:api:80")!.containerId, null);
});

Deno.test("planReconcile() sends a docker command when only the Docker verdict changes", () => {
  const w = world();
  w.sync([spec("h1:web-1:80")]);
  const paused = { state: "paused", detail: "" } as const;
  const plan = w.sync([spec("h1:web-1:80", { docker: paused })]);
  assert.deepEqual(plan.commands, [{
    type: "docker",
    id: "h1:web-1:80",
    state: "paused",
    detail: "",
  }]);
  assert.deepEqual(w.sync([spec("h1:web-1:80", { docker: paused })]).commands, []);
  const moved = w.sync([spec("h1:web-1:80", { docker: paused, port: 1 })]);
  assert.equal(moved.commands[0]!.type, "register");
});

Deno.test("planReconcile() writes the Docker verdict only, never the checker's result", () => {
  const w = world();
  const id = "h1:web-1:80";
  const check = { http: "/health", intervalMs: 5000, timeoutMs: 1000 };
  const desired = spec(id, { check });
  const health = () => instanceHealth(w.store.instance(id)!, "alive");
  w.sync([desired]);
  assert.equal(health().output, "awaiting first check");
  // The health checker reports passing; the watcher must not undo it.
  w.apply({ type: "check", id, status: "passing", output: "HTTP 200" });
  assert.deepEqual(w.sync([desired]).commands, []);
  assert.equal(health().status, "passing");
  // Docker's own verdict is a source of its own; the check result stays as the checker left it.
  w.sync([{ ...desired, docker: { state: "unhealthy", detail: "" } }]);
  assert.equal(health().output, "docker health: unhealthy");
  assert.deepEqual(w.store.instance(id)!.checkResult, { status: "passing", output: "HTTP 200" });
  // Back to fine in Docker's eyes: served again on the checker's standing result.
  assert.deepEqual(w.sync([desired]).commands.map((c) => c.type), ["docker"]);
  assert.equal(health().status, "passing");
  // A recreated container (new id) starts over.
  w.sync([{ ...desired, containerId: "c9" }]);
  assert.equal(w.store.instance(id)!.checkResult, null);
  assert.equal(health().output, "awaiting first check");
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
