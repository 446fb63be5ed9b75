import assert from "node:assert/strict";
import { apiInstanceSpec, instanceSpec, registeredCheck as ttl } from "../../test/fixtures.ts";
import { checkOnNode, checksOfNode, checkStatus } from "./checks.ts";
import { instanceHealth } from "./health.ts";
import { Store } from "./store.ts";
import type { Change, Command, RegisteredCheck } from "./types.ts";
import { rules, validateCommand } from "./validate.ts";

/** A store with node n1 and an API instance `api` (no checks) on it. */
function setup(): { store: Store; apply: (c: Command) => ReturnType<Store["apply"]> } {
  const store = Store.open(":memory:");
  let index = 0;
  const apply = (c: Command) => store.apply(++index, c);
  apply({ type: "node.register", name: "n1", address: "10.0.0.1", meta: {} });
  apply({ type: "register", instance: apiInstanceSpec({ id: "api", service: "api" }) });
  return { store, apply };
}

Deno.test("check.register binds a TTL check to a service: critical until it passes", () => {
  const { store, apply } = setup();
  assert.equal(instanceHealth(store.instance("api")!, store.node("n1")).served, true);
  assert.deepEqual(
    apply({ type: "check.register", node: "n1", serviceId: "api", check: ttl("t1") }),
    { ok: true },
  );
  const h = instanceHealth(store.instance("api")!, store.node("n1"));
  assert.equal(h.status, "critical");
  assert.equal(h.output, "check t1 is critical");
  assert.equal(checkStatus(store, "n1", "t1"), "critical");
  apply({ type: "check.update", node: "n1", id: "t1", status: "passing", output: "ok" });
  assert.equal(checkStatus(store, "n1", "t1"), "passing");
  assert.equal(instanceHealth(store.instance("api")!, store.node("n1")).served, true);
  const view = checkOnNode(store, "n1", "t1")!;
  assert.equal(view.serviceId, "api");
  assert.equal(view.type, "ttl");
  assert.equal(view.output, "ok");
  store.close();
});

Deno.test("checkStatus() answers serfHealth from liveness and undefined for unknown checks", () => {
  const { store, apply } = setup();
  assert.equal(checkStatus(store, "n1", "serfHealth"), "passing");
  apply({ type: "node.status", name: "n1", status: "down" });
  assert.equal(checkStatus(store, "n1", "serfHealth"), "critical");
  assert.equal(checkStatus(store, "n1", "nope"), undefined);
  assert.equal(checkStatus(store, "n9", "serfHealth"), undefined);
  // An instance's own check source is `service:<id>`.
  assert.equal(checkStatus(store, "n1", "service:api"), "passing");
  store.close();
});

Deno.test("check.register node-level: a critical node check fails every instance of the node", () => {
  const { store, apply } = setup();
  apply({ type: "register", instance: instanceSpec({ id: "n1:web:80" }) });
  const changes: Change[] = [];
  store.subscribe((c) => changes.push(c));
  apply({ type: "check.register", node: "n1", serviceId: null, check: ttl("disk") });
  assert.deepEqual([...changes[0]!.services].sort(), ["api", "web"]);
  assert.ok(changes[0]!.tables.has("instances"));
  for (const i of store.instances()) {
    assert.equal(instanceHealth(i, store.node("n1")).status, "critical");
    // Given only the liveness status, node checks are not seen.
    assert.equal(instanceHealth(i, "alive").served, true);
  }
  apply({ type: "check.update", node: "n1", id: "disk", status: "warning", output: "80%" });
  assert.equal(instanceHealth(store.instance("api")!, store.node("n1")).status, "warning");
  assert.deepEqual(
    checksOfNode(store, "n1").map((c) => [c.id, c.status, c.serviceId]),
    [
      ["serfHealth", "passing", ""],
      ["disk", "warning", ""],
      ["service:api", "passing", "api"],
      ["service:n1:web:80", "passing", "n1:web:80"],
      ["service:n1:web:80:docker", "passing", "n1:web:80"],
    ],
  );
  apply({ type: "check.deregister", node: "n1", id: "disk" });
  assert.equal(store.node("n1")!.checks, undefined);
  assert.equal(instanceHealth(store.instance("api")!, store.node("n1")).served, true);
  store.close();
});

Deno.test("check.register moves a check id between node and service; ids stay unique per node", () => {
  const { store, apply } = setup();
  apply({ type: "check.register", node: "n1", serviceId: null, check: ttl("c") });
  apply({ type: "check.register", node: "n1", serviceId: "api", check: ttl("c") });
  assert.equal(store.node("n1")!.checks, undefined);
  assert.deepEqual(store.instance("api")!.checks!.map((c) => c.id), ["c"]);
  apply({ type: "check.register", node: "n1", serviceId: null, check: ttl("c") });
  assert.equal(store.instance("api")!.checks, undefined);
  assert.deepEqual(store.node("n1")!.checks!.map((c) => c.id), ["c"]);
  store.close();
});

Deno.test("check.register again with the same definition keeps the last result", () => {
  const { store, apply } = setup();
  apply({ type: "check.register", node: "n1", serviceId: "api", check: ttl("t") });
  apply({ type: "check.update", node: "n1", id: "t", status: "passing", output: "fine" });
  apply({ type: "check.register", node: "n1", serviceId: "api", check: ttl("t") });
  assert.equal(checkOnNode(store, "n1", "t")!.output, "fine");
  // Another TTL is another definition: the given result applies.
  apply({ type: "check.register", node: "n1", serviceId: "api", check: ttl("t", { ttlMs: 5000 }) });
  assert.equal(checkStatus(store, "n1", "t"), "critical");
  // A service re-registration carrying the check keeps its result too.
  apply({ type: "check.update", node: "n1", id: "t", status: "passing", output: "fine" });
  const again = apiInstanceSpec({
    id: "api",
    service: "api",
    checks: [ttl("t", { ttlMs: 5000 })],
  });
  apply({ type: "register", instance: again });
  assert.equal(checkStatus(store, "n1", "t"), "passing");
  store.close();
});

Deno.test("check.* refuse unknown targets and reserved ids, changing nothing", () => {
  const { store, apply } = setup();
  apply({ type: "register", instance: instanceSpec({ id: "n1:web:80" }) });
  const before = store.instance("api");
  for (
    const [cmd, error] of [
      [
        { type: "check.register", node: "n1", serviceId: "nope", check: ttl("x") },
        /no service instance nope on node n1/,
      ],
      [{ type: "check.register", node: "n9", serviceId: null, check: ttl("x") }, /no node n9/],
      [
        { type: "check.register", node: "n1", serviceId: "api", check: ttl("serfHealth") },
        /reserved/,
      ],
      [
        {
          type: "check.register",
          node: "n1",
          serviceId: "api",
          check: ttl("service:n1:web:80:docker"),
        },
        /reserved/,
      ],
      [
        { type: "check.update", node: "n1", id: "x", status: "passing", output: "" },
        /no check x on node n1/,
      ],
    ] as [Command, RegExp][]
  ) {
    const r = apply(cmd);
    assert.equal(r.ok, false);
    assert.match(r.error!, error);
  }
  assert.deepEqual(store.instance("api"), before);
  assert.deepEqual(apply({ type: "check.deregister", node: "n1", id: "x" }), { ok: true });
  store.close();
});

Deno.test("rules.registeredCheck() refuses bad checks with one line naming the field", () => {
  const cases: [Partial<RegisteredCheck> & Record<string, unknown>, RegExp][] = [
    [{ kind: "script" as never }, /kind: expected ttl\|http\|tcp\|grpc\|udp\|reported/],
    [{ ttlMs: 10 }, /ttlMs: expected a duration from 1s to 24h/],
    [{ kind: "http", target: "/health", intervalMs: 1000, timeoutMs: 100, ttlMs: 0 }, /URL/],
    [{ kind: "http", target: "ftp://x/", intervalMs: 1000, timeoutMs: 100, ttlMs: 0 }, /URL/],
    [{ kind: "tcp", target: "host", intervalMs: 1000, timeoutMs: 100, ttlMs: 0 }, /host:port/],
    [{ kind: "tcp", target: "h:70000", intervalMs: 1000, timeoutMs: 100, ttlMs: 0 }, /host:port/],
    [{ kind: "tcp", target: "h:80", intervalMs: 1, timeoutMs: 100, ttlMs: 0 }, /intervalMs/],
    [{ kind: "grpc", target: "h:80/a b", intervalMs: 1000, timeoutMs: 100, ttlMs: 0 }, /service/],
    [{ kind: "grpc", target: "h:80", intervalMs: 0, timeoutMs: 100, ttlMs: 0 }, /intervalMs/],
    [{ kind: "ttl", intervalMs: 5 }, /intervalMs: expected 0 for a ttl check/],
    [{ status: "ok" as never }, /status: expected passing\|warning\|critical/],
    [{ output: "x".repeat(5000) }, /output: expected at most 4096 characters/],
    [{ id: "" }, /id: expected a non-empty string/],
  ];
  for (const [over, want] of cases) {
    assert.throws(() => rules.registeredCheck({ ...ttl("a"), ...over }, "check"), want);
  }
  assert.deepEqual(
    rules.registeredCheck({
      ...ttl("a"),
      kind: "tcp",
      target: "[::1]:8080",
      ttlMs: 0,
      intervalMs: 1000,
      timeoutMs: 100,
    }, "c").target,
    "[::1]:8080",
  );
  assert.throws(
    () => rules.registeredChecks([ttl("a"), ttl("a")], "checks"),
    /checks: expected distinct check ids/,
  );
  assert.throws(
    () => validateCommand({ type: "check.update", node: "n1", id: "x", status: "bad" }),
    /command.status/,
  );
});

Deno.test("Store.apply() of a malformed check command is refused, not thrown", () => {
  const { store } = setup();
  const r = store.apply(3, { type: "check.register", node: "n1", check: { id: 5 } });
  assert.equal(r.ok, false);
  assert.match(r.error!, /command.check/);
  store.close();
});

Deno.test("register refuses checks whose ids are taken on the node; check.register takes service: ids", () => {
  const { store, apply } = setup();
  apply({ type: "check.register", node: "n1", serviceId: "api", check: ttl("shared") });
  const r = apply({
    type: "register",
    instance: apiInstanceSpec({ id: "other", service: "other", checks: [ttl("shared")] }),
  });
  assert.equal(r.ok, false);
  assert.match(r.error!, /check id "shared" is taken on node n1 \(by service api\)/);
  assert.equal(store.instance("other"), undefined);
  const serf = apply({
    type: "register",
    instance: apiInstanceSpec({ id: "x", service: "x", checks: [ttl("serfHealth")] }),
  });
  assert.match(serf.error!, /check id "serfHealth" is taken/);
  // A Consul-style id `service:<id>` is free when the instance has no check of its own.
  assert.deepEqual(
    apply({ type: "check.register", node: "n1", serviceId: "api", check: ttl("service:api") }),
    { ok: true },
  );
  // Re-registering the same instance with its own checks is no clash.
  const again = apply({
    type: "register",
    instance: apiInstanceSpec({ id: "api", service: "api", checks: [ttl("shared")] }),
  });
  assert.deepEqual(again, { ok: true });
  store.close();
});

Deno.test("a user snapshot carries registered checks of nodes and instances through a restore", () => {
  const { store, apply } = setup();
  apply({ type: "check.register", node: "n1", serviceId: null, check: ttl("disk") });
  apply({ type: "check.register", node: "n1", serviceId: "api", check: ttl("hb") });
  apply({ type: "check.update", node: "n1", id: "hb", status: "passing", output: "ok" });
  const src = store.snapshotSource("user");
  const parts: Uint8Array[] = [];
  for (let p = src.next(); p !== null; p = src.next()) parts.push(p);
  src.close();
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.byteLength;
  }
  const other = Store.open(":memory:");
  other.apply(1, { type: "restore.begin", id: "r" });
  assert.deepEqual(other.apply(2, { type: "restore.chunk", id: "r", seq: 0, data: bytes }), {
    ok: true,
  });
  assert.deepEqual(
    other.apply(3, { type: "restore.commit", id: "r", chunks: 1, bytes: bytes.byteLength }),
    { ok: true },
  );
  assert.deepEqual(checksOfNode(other, "n1"), checksOfNode(store, "n1"));
  assert.equal(checkOnNode(other, "n1", "hb")?.output, "ok");
  store.close();
  other.close();
});
