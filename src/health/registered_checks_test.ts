import assert from "node:assert/strict";
import http2 from "node:http2";
import { Buffer } from "node:buffer";
import { encodeHealthRequest, encodeHealthResponse, grpcFrame, SERVING } from "./grpc_health.ts";
import { checkOnNode, instanceHealth } from "../store/mod.ts";
import { HealthChecker } from "./checker.ts";
import { CheckTimers, RETRY_MS, TTL_EXPIRED_OUTPUT } from "./check_timers.ts";
import type { Timers } from "./probe.ts";
import { httpServer, instance, oneNodeCluster, tcpServer } from "./_testing.ts";
import { waitFor } from "../../test/wait.ts";
import { registeredCheck as check } from "../../test/fixtures.ts";
import { unusedPort } from "../../test/ports.ts";

const NODE = "n1";

const setup = () => oneNodeCluster(NODE);

Deno.test("HealthChecker requests a registered HTTP check's URL on its own port, not the service's", async () => {
  const admin = await httpServer((path) => path === "/ready" ? 200 : 404);
  const servicePort = await unusedPort(); // nothing listens on the service's own port
  const t = await setup();
  const checker = new HealthChecker({ store: t.store, propose: t.propose, node: NODE });
  try {
    await t.cluster.propose({
      type: "register",
      instance: {
        ...instance("web-1", NODE, servicePort, null),
        checks: [check("admin", {
          kind: "http",
          target: `http://127.0.0.1:${admin.port}/ready`,
          ttlMs: 0,
          intervalMs: 100,
          timeoutMs: 2000,
        })],
      },
    });
    checker.start();
    await waitFor(
      "admin check passing",
      () => checkOnNode(t.store, NODE, "admin")?.status === "passing",
    );
    assert.deepEqual(admin.requests.slice(0, 1), ["/ready"]);
    assert.equal(
      checkOnNode(t.store, NODE, "admin")?.output,
      `HTTP GET http://127.0.0.1:${admin.port}/ready: 200 OK`,
    );
    const i = t.store.instance("web-1")!;
    assert.equal(instanceHealth(i, t.store.node(NODE)).served, true);
    assert.deepEqual(t.proposed.at(-1), {
      type: "check.update",
      node: NODE,
      id: "admin",
      status: "passing",
      output: `HTTP GET http://127.0.0.1:${admin.port}/ready: 200 OK`,
    });
  } finally {
    await checker.close();
    await t.cluster.close();
    t.store.close();
    await admin.close();
  }
});

Deno.test("HealthChecker connects a registered TCP check to its host:port; node-level checks too", async () => {
  const open = await tcpServer();
  const t = await setup();
  const checker = new HealthChecker({ store: t.store, propose: t.propose, node: NODE });
  try {
    await t.cluster.propose({
      type: "check.register",
      node: NODE,
      serviceId: null,
      check: check("db", {
        kind: "tcp",
        target: `127.0.0.1:${open.port}`,
        ttlMs: 0,
        intervalMs: 100,
        timeoutMs: 2000,
      }),
    });
    checker.start();
    await waitFor("db passing", () => checkOnNode(t.store, NODE, "db")?.status === "passing");
    assert.deepEqual(checker.checks().map((c) => c.id), ["check:db"]);
  } finally {
    await checker.close();
    await t.cluster.close();
    t.store.close();
    await open.close();
  }
});

Deno.test("HealthChecker asks a registered GRPC check's host:port/service with the gRPC health protocol", async () => {
  const asked: Buffer[] = [];
  const server = http2.createServer();
  server.on("stream", (stream) => {
    const chunks: Buffer[] = [];
    stream.on("data", (d: Buffer) => chunks.push(d));
    stream.on("end", () => {
      asked.push(Buffer.concat(chunks));
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, {
        waitForTrailers: true,
      });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(grpcFrame(encodeHealthResponse(SERVING)));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const t = await setup();
  const checker = new HealthChecker({ store: t.store, propose: t.propose, node: NODE });
  try {
    await t.cluster.propose({
      type: "check.register",
      node: NODE,
      serviceId: null,
      check: check("rpc", {
        kind: "grpc",
        target: `127.0.0.1:${port}/pkg.Rpc`,
        ttlMs: 0,
        intervalMs: 100,
        timeoutMs: 2000,
      }),
    });
    checker.start();
    await waitFor("rpc passing", () => checkOnNode(t.store, NODE, "rpc")?.status === "passing");
    assert.equal(
      checkOnNode(t.store, NODE, "rpc")?.output,
      `gRPC health 127.0.0.1:${port}/pkg.Rpc: SERVING`,
    );
    assert.deepEqual(asked[0], grpcFrame(encodeHealthRequest("pkg.Rpc")));
  } finally {
    await checker.close();
    await t.cluster.close();
    t.store.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

/** Timers driven by the test: `fire()` runs every timer due by `now`. */
function fakeTimers() {
  let now = 0;
  let next = 1;
  const pending = new Map<number, { at: number; fn: () => void }>();
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      const id = next++;
      pending.set(id, { at: now + ms, fn });
      return id;
    },
    clearTimeout: (h) => void pending.delete(h as number),
  };
  const advance = (ms: number) => {
    now += ms;
    for (const [id, t] of [...pending].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at <= now && pending.delete(id)) t.fn();
    }
  };
  return { timers, advance };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

Deno.test("CheckTimers turns a TTL check critical when no report came for its TTL; renew() restarts it", async () => {
  const t = await setup();
  const clock = fakeTimers();
  const timers = new CheckTimers({
    store: t.store,
    propose: t.propose,
    node: NODE,
    timers: clock.timers,
    log: () => {},
  });
  try {
    await t.cluster.propose({ type: "register", instance: instance("web-1", NODE, 80, null) });
    await t.cluster.propose({
      type: "check.register",
      node: NODE,
      serviceId: "web-1",
      check: check("ttl", { status: "passing", output: "fine" }),
    });
    timers.start();
    assert.deepEqual(timers.watching().ttl, ["ttl"]);
    clock.advance(9_000);
    timers.renew("ttl"); // a report 9 s in: the TTL starts again
    clock.advance(9_000);
    await settle();
    assert.equal(checkOnNode(t.store, NODE, "ttl")?.status, "passing");
    clock.advance(1_001);
    await settle();
    const c = checkOnNode(t.store, NODE, "ttl")!;
    assert.equal(c.status, "critical");
    assert.equal(c.output, TTL_EXPIRED_OUTPUT);
    // Expired and already critical with that output: nothing more is proposed.
    const before = t.proposed.length;
    clock.advance(20_000);
    await settle();
    assert.equal(t.proposed.length, before);
    // Deregistering the check stops its timer.
    await t.cluster.propose({ type: "check.deregister", node: NODE, id: "ttl" });
    await settle();
    assert.deepEqual(timers.watching().ttl, []);
  } finally {
    timers.close();
    await t.cluster.close();
    t.store.close();
  }
});

Deno.test("CheckTimers deregisters a service whose check stays critical DeregisterCriticalServiceAfter", async () => {
  const t = await setup();
  const clock = fakeTimers();
  const timers = new CheckTimers({
    store: t.store,
    propose: t.propose,
    node: NODE,
    timers: clock.timers,
    log: () => {},
  });
  try {
    await t.cluster.propose({ type: "register", instance: instance("web-1", NODE, 80, null) });
    await t.cluster.propose({
      type: "check.register",
      node: NODE,
      serviceId: "web-1",
      check: check("c", { ttlMs: 3_600_000, deregisterCriticalAfterMs: 60_000 }),
    });
    timers.start();
    assert.deepEqual(timers.watching().deregister, ["c"]);
    clock.advance(30_000);
    // Passing for a while resets the count.
    await t.cluster.propose({
      type: "check.update",
      node: NODE,
      id: "c",
      status: "passing",
      output: "",
    });
    await settle();
    assert.deepEqual(timers.watching().deregister, []);
    await t.cluster.propose({
      type: "check.update",
      node: NODE,
      id: "c",
      status: "critical",
      output: "",
    });
    await settle();
    clock.advance(59_000);
    await settle();
    assert.notEqual(t.store.instance("web-1"), undefined);
    clock.advance(1_000);
    await settle();
    assert.equal(t.store.instance("web-1"), undefined);
    assert.deepEqual(t.proposed.at(-1), { type: "deregister", id: "web-1" });
  } finally {
    timers.close();
    await t.cluster.close();
    t.store.close();
  }
});

Deno.test("CheckTimers retries an expiry the cluster did not take", async () => {
  const t = await setup();
  const clock = fakeTimers();
  const logs: string[] = [];
  let fail = true;
  const timers = new CheckTimers({
    store: t.store,
    propose: (cmd) => fail ? Promise.reject(new Error("no leader")) : t.propose(cmd),
    node: NODE,
    timers: clock.timers,
    log: (l) => logs.push(l),
  });
  try {
    await t.cluster.propose({
      type: "check.register",
      node: NODE,
      serviceId: null,
      check: check("n", { status: "passing" }),
    });
    timers.start();
    clock.advance(10_000);
    await settle();
    assert.match(logs[0]!, /cannot expire TTL check n: no leader; retrying/);
    fail = false;
    clock.advance(RETRY_MS);
    await settle();
    assert.equal(checkOnNode(t.store, NODE, "n")?.output, TTL_EXPIRED_OUTPUT);
  } finally {
    timers.close();
    await t.cluster.close();
    t.store.close();
  }
});
