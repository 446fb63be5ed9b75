import assert from "node:assert/strict";
import { LocalCluster } from "../cluster/testing.ts";
import type { Proposed } from "../cluster/types.ts";
import { type Command, instanceHealth, type InstanceSpec, Store } from "../store/mod.ts";
import { HealthChecker, type HealthOptions } from "./checker.ts";
import type { Timers } from "./probe.ts";
import type { UdpProber } from "./udp_check.ts";
import { httpServer, instance, tcpServer } from "./_testing.ts";
import { waitFor } from "../../test/wait.ts";
import { unusedPort } from "../../test/ports.ts";

const NODE = "n1";
const HTTP = (path: string) => ({ http: path, intervalMs: 100, timeoutMs: 2000 });

/** A store with a LocalCluster, a propose that records every check command, and a log. */
function setup(opts: Partial<HealthOptions> = {}, onCheck: (cmd: Command) => void = () => {}) {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: NODE, address: "127.0.0.1" });
  const proposals: { id: string; status: string; output: string }[] = [];
  const logs: string[] = [];
  const propose = (cmd: Command): Promise<Proposed> => {
    if (cmd.type === "check") {
      onCheck(cmd);
      proposals.push({ id: cmd.id, status: cmd.status, output: cmd.output });
    }
    return cluster.propose(cmd);
  };
  const checker = new HealthChecker({
    store,
    propose,
    node: NODE,
    log: (l) => logs.push(l),
    ...opts,
  });
  const register = (spec: InstanceSpec) => cluster.propose({ type: "register", instance: spec });
  /** The instance's health as every view derives it (its node is live). */
  const health = (id: string) => {
    const i = store.instance(id);
    return i === undefined ? undefined : instanceHealth(i, "alive");
  };
  const status = (id: string) => health(id)?.status;
  const close = async () => {
    await checker.close();
    await cluster.close();
    store.close();
  };
  return { store, cluster, checker, proposals, logs, register, health, status, close };
}

Deno.test("HealthChecker proposes passing → critical → passing only on transitions", async () => {
  let code = 200;
  const served: number[] = [];
  const server = await httpServer(() => {
    served.push(code);
    return code;
  });
  // 500s served when each check command was proposed
  const failsSeen: number[] = [];
  const t = setup({}, () => failsSeen.push(served.filter((c) => c === 500).length));
  try {
    await t.register(instance("web-1", NODE, server.port, HTTP("/health")));
    t.checker.start();
    await waitFor("passing", () => t.status("web-1") === "passing");
    await waitFor("a few more passing runs", () => served.length >= 4);
    code = 500;
    await waitFor("critical", () => t.status("web-1") === "critical");
    const runs = served.length;
    await waitFor("a few more failing runs", () => served.length >= runs + 3);
    code = 200;
    await waitFor("passing again", () => t.status("web-1") === "passing");
    const runs2 = served.length;
    await waitFor("a few more passing runs", () => served.length >= runs2 + 3);
    assert.deepEqual(t.proposals, [
      { id: "web-1", status: "passing", output: "HTTP GET /health: 200 OK" },
      { id: "web-1", status: "critical", output: "HTTP GET /health: 500 Internal Server Error" },
      { id: "web-1", status: "passing", output: "HTTP GET /health: 200 OK" },
    ]);
    // failuresBeforeCritical defaults to 2: two 500s were served before the flip.
    assert.equal(failsSeen[1], 2);
    assert.deepEqual(t.logs, []);
  } finally {
    await t.close();
    await server.close();
  }
});

Deno.test("HealthChecker does not flip a passing instance on a single failure", async () => {
  const server = await httpServer((_p, n) => n === 3 ? 500 : 200);
  const t = setup();
  try {
    await t.register(instance("web-1", NODE, server.port, HTTP("/health")));
    t.checker.start();
    await waitFor("six runs", () => server.requests.length >= 6);
    assert.deepEqual(t.proposals, [
      { id: "web-1", status: "passing", output: "HTTP GET /health: 200 OK" },
    ]);
    assert.equal(t.status("web-1"), "passing");
  } finally {
    await t.close();
    await server.close();
  }
});

Deno.test("HealthChecker runs TCP checks against a listening and a closed port", async () => {
  const open = await tcpServer();
  const closed = await unusedPort();
  const t = setup();
  const tcp = { tcp: true, intervalMs: 100, timeoutMs: 2000 };
  try {
    await t.register(instance("up", NODE, open.port, tcp));
    await t.register(instance("down", NODE, closed, tcp));
    t.checker.start();
    await waitFor("both judged", () => t.proposals.length >= 2);
    await waitFor("up passing", () => t.status("up") === "passing");
    assert.equal(
      t.health("up")?.output,
      `TCP connect 127.0.0.1:${open.port}: success`,
    );
    assert.equal(t.status("down"), "critical");
    assert.equal(
      t.health("down")?.output,
      `TCP connect 127.0.0.1:${closed}: connection refused`,
    );
  } finally {
    await t.close();
    await open.close();
  }
});

Deno.test("HealthChecker marks an instance critical when its check times out", async () => {
  const server = await httpServer(() => "hang");
  const t = setup();
  try {
    await t.register({
      ...instance("slow", NODE, server.port, { http: "/slow", intervalMs: 100, timeoutMs: 150 }),
      checkResult: { status: "passing", output: "" },
    });
    t.checker.start();
    await waitFor("critical", () => t.status("slow") === "critical");
    assert.deepEqual(t.proposals, [
      { id: "slow", status: "critical", output: "HTTP GET /slow: timed out after 150ms" },
    ]);
  } finally {
    await t.close();
    await server.close();
  }
});

Deno.test("HealthChecker never runs the check of another node's instance", async () => {
  const mine = await httpServer(() => 200);
  const theirs = await httpServer(() => 200);
  const t = setup();
  try {
    await t.register(instance("other", "n2", theirs.port, HTTP("/health")));
    await t.register(instance("mine", NODE, mine.port, HTTP("/health")));
    t.checker.start();
    await waitFor("three runs of mine", () => mine.requests.length >= 3);
    assert.equal(theirs.requests.length, 0);
    assert.deepEqual(t.checker.checks().map((c) => c.id), ["mine"]);
    assert.equal(t.status("other"), "critical");
    assert.ok(t.proposals.every((p) => p.id === "mine"));
  } finally {
    await t.close();
    await mine.close();
    await theirs.close();
  }
});

Deno.test("HealthChecker stops the timer of a removed instance", async () => {
  const a = await httpServer(() => 200);
  const b = await httpServer(() => 200);
  const active = new Set<unknown>();
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      const h = setTimeout(() => {
        active.delete(h);
        fn();
      }, ms);
      active.add(h);
      return h;
    },
    clearTimeout: (h) => {
      active.delete(h);
      clearTimeout(h as number);
    },
  };
  const t = setup({ timers });
  try {
    await t.register(instance("a", NODE, a.port, HTTP("/a")));
    await t.register(instance("b", NODE, b.port, HTTP("/b")));
    t.checker.start();
    await waitFor("both checked twice", () => a.requests.length >= 2 && b.requests.length >= 2);
    await t.cluster.propose({ type: "deregister", id: "a" });
    await waitFor("a dropped", () => t.checker.checks().every((c) => c.id !== "a"));
    const bNow = b.requests.length;
    await waitFor("b checked again", () => b.requests.length >= bNow + 1);
    const aAfter = a.requests.length;
    await waitFor("b checked three more times", () => b.requests.length >= bNow + 4);
    assert.equal(a.requests.length, aAfter);
    assert.deepEqual(t.checker.checks().map((c) => c.id), ["b"]);
    await t.checker.close();
    assert.equal(active.size, 0);
  } finally {
    await t.close();
    await a.close();
    await b.close();
  }
});

Deno.test("HealthChecker restarts the check when its definition changes", async () => {
  const server = await httpServer(() => 200);
  const t = setup();
  const count = (p: string) => server.requests.filter((r) => r === p).length;
  try {
    const spec = instance("web-1", NODE, server.port, HTTP("/a"));
    await t.register(spec);
    t.checker.start();
    await waitFor("two runs of /a", () => count("/a") >= 2);
    await waitFor("passing", () => t.status("web-1") === "passing");
    await t.register({ ...spec, check: HTTP("/b") });
    await waitFor("output names /b", () => t.health("web-1")?.output === "HTTP GET /b: 200 OK");
    const aAfter = count("/a");
    const bNow = count("/b");
    await waitFor("three more runs of /b", () => count("/b") >= bNow + 3);
    assert.equal(count("/a"), aAfter);
    assert.deepEqual(t.checker.checks().map((c) => c.check), ["HTTP GET /b"]);
    assert.deepEqual(t.proposals.map((p) => p.output), [
      "HTTP GET /a: 200 OK",
      "HTTP GET /b: 200 OK",
    ]);
  } finally {
    await t.close();
    await server.close();
  }
});

Deno.test("HealthChecker records its result on a Docker row whatever the Docker verdict", async () => {
  const server = await httpServer(() => 200);
  const t = setup();
  try {
    const spec: InstanceSpec = {
      ...instance("c:web:80", NODE, server.port, HTTP("/h")),
      containerId: "c1",
      docker: { state: "stopping", detail: "" },
    };
    await t.register(spec);
    t.checker.start();
    await waitFor("check result", () => t.store.instance("c:web:80")?.checkResult !== null);
    assert.deepEqual(t.store.instance("c:web:80")?.docker, { state: "stopping", detail: "" });
    assert.deepEqual(t.health("c:web:80")?.check, {
      status: "passing",
      output: "HTTP GET /h: 200 OK",
    });
    assert.equal(t.health("c:web:80")?.output, "container being stopped");
    assert.equal(t.status("c:web:80"), "critical");
    // The watcher's own command lifts its verdict; the check's result already stands.
    await t.cluster.propose({ type: "docker", id: "c:web:80", state: "running", detail: "" });
    assert.equal(t.status("c:web:80"), "passing");
    await waitFor("three runs", () => server.requests.length >= 3);
    assert.deepEqual(t.proposals, [
      { id: "c:web:80", status: "passing", output: "HTTP GET /h: 200 OK" },
    ]);
  } finally {
    await t.close();
    await server.close();
  }
});

Deno.test("HealthChecker keeps at most concurrencyMax runs in flight", async () => {
  let inFlight = 0;
  let inFlightMax = 0;
  let calls = 0;
  const httpGet = () => {
    calls++;
    inFlight++;
    inFlightMax = Math.max(inFlightMax, inFlight);
    return new Promise<{ statusCode: number; statusText: string }>((resolve) =>
      setTimeout(() => {
        inFlight--;
        resolve({ statusCode: 200, statusText: "OK" });
      }, 20)
    );
  };
  const t = setup({ httpGet, concurrencyMax: 2 });
  try {
    for (let i = 0; i < 6; i++) {
      await t.register(instance(`w${i}`, NODE, 8000 + i, HTTP("/health")));
    }
    t.checker.start();
    await waitFor("eighteen runs", () => calls >= 18);
    assert.equal(inFlightMax, 2);
    await waitFor(
      "all passing",
      () => t.store.instances().every((i) => instanceHealth(i, "alive").served),
    );
  } finally {
    await t.close();
  }
});

Deno.test("HealthChecker runs UDP checks in their own slots: silent ones waiting out their timeout hold no other check back", async () => {
  let udpInFlight = 0;
  let udpInFlightMax = 0;
  const udp: UdpProber = {
    // A healthy silent service: nothing comes back before the (minute-long) timeout.
    exchange: (_to, _payload, signal) =>
      new Promise((_resolve, reject) => {
        udpInFlight++;
        udpInFlightMax = Math.max(udpInFlightMax, udpInFlight);
        signal.addEventListener("abort", () => {
          udpInFlight--;
          reject(signal.reason);
        }, { once: true });
      }),
    seesRefusals: true,
  };
  const httpGet = () => Promise.resolve({ statusCode: 200, statusText: "OK" });
  const t = setup({ httpGet, udp, concurrencyMax: 1, udpConcurrencyMax: 2 });
  try {
    const silent = { udp: "", intervalMs: 100, timeoutMs: 60_000 };
    for (let i = 0; i < 3; i++) await t.register(instance(`u${i}`, NODE, 5300 + i, silent));
    const udpDue = () => t.checker.checks().filter((c) => c.id.startsWith("u") && c.running);
    t.checker.start();
    await waitFor("the three UDP checks due", () => udpDue().length === 3);
    assert.equal(udpInFlight, 2, "the third waits for a UDP slot");
    await t.register(instance("w", NODE, 8000, HTTP("/health")));
    await waitFor("the HTTP check run", () => t.status("w") === "passing");
    assert.equal(udpInFlightMax, 2);
    assert.equal(udpDue().length, 3, "the UDP runs still wait out their timeout");
  } finally {
    await t.close();
  }
});

Deno.test("HealthChecker logs once why its UDP checks see no ICMP refusals (FFI's reason)", async () => {
  let runs = 0;
  const udp: UdpProber = {
    exchange: () => {
      runs++;
      return Promise.resolve({ kind: "reply", data: new Uint8Array() });
    },
    seesRefusals: false,
    why: "cannot load libc.so.6: not found",
  };
  const t = setup({ udp });
  try {
    const check = { udp: "", intervalMs: 100, timeoutMs: 1000 };
    for (let i = 0; i < 2; i++) await t.register(instance(`u${i}`, NODE, 5300 + i, check));
    t.checker.start();
    await waitFor("four UDP runs", () => runs >= 4);
    assert.deepEqual(t.logs, [
      "health: UDP checks see no ICMP port unreachable (a closed port passes as silence): " +
      "cannot load libc.so.6: not found",
    ]);
  } finally {
    await t.close();
  }
});

Deno.test("HealthChecker logs a failed proposal once and retries it on the next run", async () => {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: NODE, address: "127.0.0.1" });
  let attempts = 0;
  const logs: string[] = [];
  const propose = (cmd: Command) => {
    if (cmd.type === "check" && ++attempts <= 3) return Promise.reject(new Error("no leader"));
    return cluster.propose(cmd);
  };
  const httpGet = () => Promise.resolve({ statusCode: 200, statusText: "OK" });
  const checker = new HealthChecker({
    store,
    propose,
    node: NODE,
    log: (l) => logs.push(l),
    httpGet,
  });
  try {
    await cluster.propose({
      type: "register",
      instance: instance("web-1", NODE, 8000, HTTP("/health")),
    });
    checker.start();
    await waitFor("passing", () => store.instance("web-1")?.checkResult?.status === "passing");
    assert.equal(attempts, 4);
    assert.deepEqual(logs, [
      "health: web-1: cannot record passing (HTTP GET /health: 200 OK): no leader; " +
      "retrying on the next run",
    ]);
  } finally {
    await checker.close();
    await cluster.close();
    store.close();
  }
});

Deno.test("HealthChecker.close() does not wait for a proposal the cluster never answers", async () => {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: NODE, address: "127.0.0.1" });
  let asked = 0;
  const propose = (cmd: Command): Promise<Proposed> => {
    if (cmd.type !== "check") return cluster.propose(cmd);
    asked++;
    return new Promise(() => {}); // a cluster without a leader that never gives up
  };
  const httpGet = () => Promise.resolve({ statusCode: 200, statusText: "OK" });
  const checker = new HealthChecker({ store, propose, node: NODE, httpGet, log: () => {} });
  try {
    await cluster.propose({
      type: "register",
      instance: instance("web-1", NODE, 8000, HTTP("/health")),
    });
    checker.start();
    await waitFor("a proposal", () => asked === 1);
    await checker.close();
    assert.deepEqual(checker.checks(), []);
    assert.equal(store.instance("web-1")?.checkResult, null);
  } finally {
    await checker.close();
    await cluster.close();
    store.close();
  }
});

Deno.test("HealthChecker starts each check after a jitter below the interval", async () => {
  const delays: number[] = [];
  const timers: Timers = {
    setTimeout: (_fn, ms) => {
      delays.push(ms);
      return delays.length;
    },
    clearTimeout: () => {},
  };
  const t = setup({ timers, random: () => 0.5 });
  try {
    await t.register(instance("fast", NODE, 8000, HTTP("/h")));
    await t.register(
      instance("slow", NODE, 8001, { http: "/h", intervalMs: 60_000, timeoutMs: 1000 }),
    );
    t.checker.start();
    // ids in order: "fast" (interval 100 ms → 50), "slow" (jitter capped at 1000 ms → 500)
    assert.deepEqual(delays, [50, 500]);
  } finally {
    await t.close();
  }
});

Deno.test("HealthChecker skips a check with neither http nor tcp and says so once", async () => {
  const t = setup();
  try {
    await t.register(instance("none", NODE, 8000, { intervalMs: 100, timeoutMs: 100 }));
    t.checker.start();
    await t.cluster.propose({ type: "kv.put", key: "k", value: new Uint8Array(), flags: 0 });
    await t.register({ ...instance("none", NODE, 8000, { intervalMs: 200, timeoutMs: 100 }) });
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(t.checker.checks(), []);
    assert.deepEqual(t.logs, [
      "health: none: check has neither http, grpc, tcp nor udp; nothing to run",
    ]);
  } finally {
    await t.close();
  }
});

Deno.test("new HealthChecker() rejects out-of-range options with one line", () => {
  const store = Store.open(":memory:");
  try {
    const propose = () => Promise.reject(new Error("unused"));
    assert.throws(
      () => new HealthChecker({ store, propose, node: NODE, concurrencyMax: 0 }),
      /health: concurrencyMax must be an integer in 1\.\.4096, got 0/,
    );
    assert.throws(
      () => new HealthChecker({ store, propose, node: NODE, udpConcurrencyMax: 0 }),
      /^RangeError: health: udpConcurrencyMax must be an integer in 1\.\.4096, got 0$/,
    );
  } finally {
    store.close();
  }
});
