import assert from "node:assert/strict";
import { LocalCluster } from "../cluster/testing.ts";
import { type Command, instanceHealth, Store } from "../store/mod.ts";
import type { ContainerInfo } from "./container.ts";
import type { DockerEvent, Engine } from "./engine.ts";
import { DockerWatcher } from "./watcher.ts";
import { RECONCILE_BATCH_MAX } from "./reconcile.ts";
import { waitFor as until } from "../../test/wait.ts";

function container(name: string, hostPort: string): ContainerInfo {
  return {
    Id: `id-${name}`,
    Name: `/${name}`,
    Config: { Image: "berth-test", Labels: {}, Env: [`SERVICE_NAME=${name}`] },
    State: { Status: "running", Running: true },
    HostConfig: { NetworkMode: "bridge" },
    NetworkSettings: { Ports: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: hostPort }] } },
  };
}

/** An engine whose containers, reachability and event stream the test controls. */
class FakeEngine implements Engine {
  containers: ContainerInfo[] = [];
  /** Containers in other states: `inspect` finds them, `list` does not. */
  stopped: ContainerInfo[] = [];
  up = true;
  lists = 0;
  streams = 0;
  onEvent: ((e: DockerEvent) => void) | null = null;
  onEnd: ((err: Error | null) => void) | null = null;

  list(): Promise<ContainerInfo[]> {
    this.lists++;
    if (!this.up) return Promise.reject(new Error("connect ENOENT /fake.sock"));
    return Promise.resolve(structuredClone(this.containers));
  }

  inspect(q: string): Promise<ContainerInfo | null> {
    if (!this.up) return Promise.reject(new Error("connect ENOENT /fake.sock"));
    const c = [...this.containers, ...this.stopped]
      .find((c) => c.Name === `/${q}` || c.Id.startsWith(q));
    return Promise.resolve(c === undefined ? null : structuredClone(c));
  }

  events(onEvent: (e: DockerEvent) => void, onEnd: (err: Error | null) => void) {
    this.streams++;
    if (!this.up) return Promise.reject(new Error("connect ENOENT /fake.sock"));
    this.onEvent = onEvent;
    this.onEnd = onEnd;
    return Promise.resolve(() => {
      this.onEvent = this.onEnd = null;
    });
  }
}

/** `beforePropose` runs before each proposal reaches the cluster (another writer racing). */
function setup(
  options: { beforePropose?: (c: Command, cluster: LocalCluster) => Promise<void> } = {},
) {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: "h1", address: "127.0.0.1:8300" });
  const engine = new FakeEngine();
  const lines: string[] = [];
  /** Every command the watcher proposed, batches flattened. */
  const proposed: Command[] = [];
  /** The size of every proposal (1 for a single command). */
  const proposals: number[] = [];
  const watcher = new DockerWatcher({
    store,
    propose: async (c) => {
      proposed.push(...(c.type === "batch" ? c.commands : [c]));
      proposals.push(c.type === "batch" ? c.commands.length : 1);
      await options.beforePropose?.(c, cluster);
      return cluster.propose(c);
    },
    node: "h1",
    advertise: "10.0.0.5",
    internal: false,
    dockerUrl: "unix:///fake.sock",
    edgeDomain: null,
    reconcileIntervalMs: 60_000,
    log: (l) => lines.push(l),
    engine,
  });
  const done = async () => {
    await watcher.close();
    await cluster.close();
    store.close();
  };
  return { store, engine, lines, watcher, done, proposed, proposals };
}

Deno.test("DockerWatcher.start() registers running containers and follows events", async () => {
  const w = setup();
  try {
    w.engine.containers = [container("web", "4000")];
    await w.watcher.start();
    assert.deepEqual(w.store.instances().map((i) => [i.id, i.address, i.port]), [
      ["h1:web:80", "127.0.0.1", 4000],
    ]);
    assert.deepEqual(w.lines, ["docker: connected to unix:///fake.sock"]);
    w.engine.containers.push(container("api", "4001"));
    w.engine.onEvent!({ action: "start", id: "id-api", attributes: {} });
    await until("api registered", () => w.store.instance("h1:api:80") !== undefined);
    w.engine.containers = [container("api", "4001")];
    w.engine.onEvent!({ action: "die", id: "id-web", attributes: {} });
    await until("web deregistered", () => w.store.instance("h1:web:80") === undefined);
  } finally {
    await w.done();
  }
});

Deno.test("DockerWatcher kill event marks the container's instances critical at once", async () => {
  const w = setup();
  try {
    w.engine.containers = [container("web", "4000")];
    await w.watcher.start();
    w.engine.onEvent!({ action: "kill", id: "id-web", attributes: { signal: "15" } });
    const status = () => instanceHealth(w.store.instance("h1:web:80")!, "alive").status;
    // The verdict is proposed synchronously with the event; LocalCluster applies it next
    // microtask.
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(w.store.instance("h1:web:80")!.docker, { state: "stopping", detail: "" });
    assert.deepEqual(w.proposed.at(-1), {
      type: "docker",
      id: "h1:web:80",
      state: "stopping",
      detail: "",
    });
    // The container is still running: the following reconcile must not put it back in service.
    await w.watcher.reconcileNow();
    assert.equal(status(), "critical");
    // A non-stopping signal (reload) does not take it out of service.
    w.engine.onEvent!({ action: "start", id: "id-web", attributes: {} });
    await w.watcher.reconcileNow();
    assert.equal(status(), "passing");
    w.engine.onEvent!({ action: "kill", id: "id-web", attributes: { signal: "1" } });
    await w.watcher.reconcileNow();
    assert.equal(status(), "passing");
    // The watcher owns the Docker verdict only: it never writes a check result.
    assert.deepEqual(w.proposed.filter((c) => c.type === "check"), []);
  } finally {
    await w.done();
  }
});

Deno.test("DockerWatcher keeps registrations while the engine is down, logs once, reconnects", async () => {
  const w = setup();
  try {
    w.engine.containers = [container("web", "4000")];
    await w.watcher.start();
    w.engine.up = false;
    w.engine.onEnd!(new Error("socket hang up"));
    const streams = w.engine.streams;
    await until("two reconnect attempts", () => w.engine.streams >= streams + 2);
    await w.watcher.reconcileNow();
    await w.watcher.reconcileNow();
    assert.deepEqual(w.store.instances().map((i) => i.id), ["h1:web:80"]);
    const unreachable = w.lines.filter((l) => l.startsWith("docker: cannot reach"));
    assert.equal(unreachable.length, 1, w.lines.join("\n"));
    assert.match(unreachable[0]!, /unix:\/\/\/fake.sock: connect ENOENT.*retrying/);
    w.engine.containers = [container("api", "4001")];
    w.engine.up = true;
    await until("reconnected", () => w.store.instance("h1:api:80") !== undefined);
    assert.equal(w.store.instance("h1:web:80"), undefined);
    assert.equal(w.lines.filter((l) => l.startsWith("docker: connected")).length, 2);
  } finally {
    await w.done();
  }
});

Deno.test("DockerWatcher.start() does not throw when the engine is down from the start", async () => {
  const w = setup();
  try {
    w.engine.up = false;
    await w.watcher.start();
    assert.equal(w.lines.length, 1);
    assert.match(w.lines[0]!, /^docker: cannot reach unix:\/\/\/fake.sock/);
  } finally {
    await w.done();
  }
});

Deno.test("DockerWatcher.reconcileNow() runs one at a time and coalesces requests", async () => {
  const w = setup();
  try {
    w.engine.containers = [container("web", "4000")];
    await w.watcher.start();
    const before = w.engine.lists;
    await Promise.all([
      w.watcher.reconcileNow(),
      w.watcher.reconcileNow(),
      w.watcher.reconcileNow(),
      w.watcher.reconcileNow(),
    ]);
    assert.equal(w.engine.lists - before, 2);
  } finally {
    await w.done();
  }
});

Deno.test("DockerWatcher logs a bad label once per container", async () => {
  const w = setup();
  try {
    const c = container("web", "4000");
    c.Config!.Labels = { "berth.weight": "-1" };
    w.engine.containers = [c];
    await w.watcher.start();
    await w.watcher.reconcileNow();
    await w.watcher.reconcileNow();
    const bad = w.lines.filter((l) => l.includes("berth.weight"));
    assert.deepEqual(bad, [
      'docker: container web: berth.weight="-1": expected an integer in [0, 65535]; using 1',
    ]);
    assert.equal(w.store.instance("h1:web:80")!.weight, 1);
  } finally {
    await w.done();
  }
});

Deno.test("DockerWatcher logs why the cluster rejected a batch and reconciles again", async () => {
  let raced = false;
  const w = setup({
    // The API deregisters the instance between the watcher's plan and its proposal.
    beforePropose: async (c, cluster) => {
      if (raced || c.type !== "batch" || c.commands[0]?.type !== "docker") return;
      raced = true;
      await cluster.propose({ type: "deregister", id: "h1:web:80" });
    },
  });
  try {
    const c = container("web", "4000");
    w.engine.containers = [c];
    await w.watcher.start();
    c.State = { Status: "paused", Running: true, Paused: true };
    await w.watcher.reconcileNow();
    assert.equal(raced, true);
    const rejected = w.lines.filter((l) => l.includes("rejected"));
    assert.deepEqual(rejected, [
      "docker: the cluster rejected a registration batch (nothing applied): " +
      "batch command 0 (docker): no instance h1:web:80; reconciling again",
    ]);
    await until(
      "registered again",
      () => w.store.instance("h1:web:80")?.docker?.state === "paused",
    );
  } finally {
    await w.done();
  }
});

Deno.test("DockerWatcher.explain() says why the latest registration did not go through, until it does", async () => {
  let failing = true;
  const w = setup({
    beforePropose: () =>
      failing ? Promise.reject(new Error("no leader to propose to")) : Promise.resolve(),
  });
  try {
    w.engine.containers = [container("web", "4000")];
    await w.watcher.start();
    const e = w.watcher.explain("web");
    assert.ok("container" in e);
    assert.equal(
      e.container.proposeError,
      "cannot propose the registrations: no leader to propose to",
    );
    failing = false;
    await w.watcher.reconcileNow();
    assert.ok(w.store.instance("h1:web:80") !== undefined);
    const after = w.watcher.explain("web");
    assert.ok("container" in after);
    assert.equal(after.container.proposeError, null);
  } finally {
    await w.done();
  }
});

Deno.test("DockerWatcher with 500 containers proposes bounded batches and reads no instance list per pass", async () => {
  const w = setup();
  try {
    // 2,000 API registrations on this node (an agent registered through its API as well).
    const api: Command[] = Array.from({ length: 2000 }, (_, k) => ({
      type: "register",
      instance: {
        id: `api-${k}`,
        service: "api",
        node: "h1",
        address: "10.0.0.5",
        port: 1000 + k,
        tags: [],
        meta: {},
        weight: 1,
        containerId: null,
        httpHosts: [],
        httpPath: null,
        tcpPort: null,
        check: null,
        docker: null,
        checkResult: null,
      },
    }));
    w.store.apply(w.store.appliedIndex() + 1, { type: "batch", commands: api });
    let lists = 0;
    const instancesOfNode = w.store.instancesOfNode.bind(w.store);
    w.store.instancesOfNode = (node) => {
      lists++;
      return instancesOfNode(node);
    };
    w.engine.containers = Array.from({ length: 500 }, (_, k) => container(`c${k}`, `${5000 + k}`));
    await w.watcher.start();
    // The test's own reads do not count.
    const docker = () => instancesOfNode("h1").filter((i) => i.containerId !== null);
    assert.equal(docker().length, 500);
    assert.deepEqual(w.proposals, [64, 64, 64, 64, 64, 64, 64, 52]);
    assert.ok(w.proposals.every((n) => n <= RECONCILE_BATCH_MAX));
    // In sync: another pass proposes nothing.
    await w.watcher.reconcileNow();
    assert.equal(w.proposals.length, 8);
    // A stop signal to every container: one command per container, at once.
    for (let k = 0; k < 500; k++) {
      w.engine.onEvent!({ action: "kill", id: `id-c${k}`, attributes: { signal: "15" } });
    }
    await until(
      "every instance stopping",
      () => docker().every((i) => i.docker?.state === "stopping"),
    );
    assert.equal(w.proposed.filter((c) => c.type === "docker").length, 500);
    // Half the containers go: 250 deregistrations in bounded batches.
    w.engine.containers = w.engine.containers.slice(0, 250);
    const before = w.proposals.length;
    await w.watcher.reconcileNow();
    assert.deepEqual(w.proposals.slice(before), [64, 64, 64, 58]);
    assert.equal(docker().length, 250);
    // The watcher read the node's instance list once, when it started.
    assert.equal(lists, 1);
  } finally {
    await w.done();
  }
});

Deno.test("DockerWatcher.explain() keeps a container's latest problems after logging them once", async () => {
  const w = setup();
  try {
    assert.deepEqual(w.watcher.explain("web"), {
      error: "the Docker watcher has not listed the engine's containers yet",
    });
    const web = container("web", "4000");
    web.Config!.Labels = { "berth.weight": "heavy" };
    w.engine.containers = [web];
    await w.watcher.start();
    await w.watcher.reconcileNow();
    assert.equal(w.lines.filter((l) => l.includes("berth.weight")).length, 1);
    const e = w.watcher.explain("web");
    assert.ok("container" in e);
    assert.deepEqual(e.container.problems.map((p) => p.label), ["berth.weight"]);
    assert.deepEqual(e.container.instances.map((i) => i.id), ["h1:web:80"]);
    assert.ok("error" in w.watcher.explain("id-w")); // not hex: no id prefix match
    // Fixed: the next reconcile's view has no problem left.
    web.Config!.Labels = { "berth.weight": "2" };
    await w.watcher.reconcileNow();
    const fixed = w.watcher.explain("/web");
    assert.ok("container" in fixed);
    assert.deepEqual(fixed.container.problems, []);
    assert.match((w.watcher.explain("gone") as { error: string }).error, /no running container/);
  } finally {
    await w.done();
  }
});

Deno.test("DockerWatcher.explainAny() names the state of a container that does not run: exited with its code and time, created, dead", async () => {
  const w = setup();
  try {
    const exited = container("old", "4002");
    exited.Config!.Labels = { "berth.weight": "heavy", "berth.http.host": "old.test" };
    exited.NetworkSettings = { Ports: {} };
    exited.Config!.ExposedPorts = { "80/tcp": {} };
    exited.State = {
      Status: "exited",
      Running: false,
      ExitCode: 137,
      OOMKilled: true,
      FinishedAt: new Date(Date.now() - 5_000).toISOString(),
    };
    const created = container("new", "4003");
    created.Id = "abcdef123456";
    created.State = { Status: "created", Running: false, Error: "port is already allocated" };
    const dead = container("dead", "4004");
    dead.State = { Status: "dead", Dead: true };
    w.engine.containers = [container("web", "4000")];
    w.engine.stopped = [exited, created, dead];
    await w.watcher.start();
    const e = await w.watcher.explainAny("old");
    assert.ok("container" in e, JSON.stringify(e));
    assert.match(e.container.state, /^exited \(code 137, OOM killed\) [5-9]s ago \(\d{4}-/);
    assert.match(
      e.container.summary,
      /^not registered: the container is exited \(code 137, OOM killed\) .*; berth registers running containers only$/,
    );
    assert.deepEqual(e.container.problems.map((p) => p.label), ["berth.weight"]);
    assert.deepEqual(e.container.instances, []);
    assert.deepEqual(e.container.ports.map((p) => [p.port, p.reason]), [
      ["80/tcp", "the container is not running"],
    ]);
    const c = await w.watcher.explainAny("abcdef12");
    assert.ok("container" in c);
    assert.equal(c.container.state, "created, never started: port is already allocated");
    const d = await w.watcher.explainAny("dead");
    assert.ok("container" in d);
    assert.equal(d.container.state, "dead");
    // A running one is the watcher's own answer; a name the engine does not know stays an error.
    const web = await w.watcher.explainAny("web");
    assert.ok("container" in web && web.container.instances.length === 1);
    assert.deepEqual(await w.watcher.explainAny("nosuch"), {
      error: 'no container named or with an id starting with "nosuch" on this member',
    });
    // Listed while it ran, inspected after it exited: the watcher's own entry says exited too.
    const late = container("late", "4005");
    late.State = { Status: "exited", Running: false, ExitCode: 1 };
    w.engine.containers.push(late);
    await w.watcher.reconcileNow();
    const l = w.watcher.explain("late");
    assert.ok("container" in l);
    assert.equal(l.container.state, "exited (code 1)");
    assert.match(l.container.summary, /berth registers running containers only$/);
    w.engine.up = false;
    const down = await w.watcher.explainAny("old");
    assert.ok("error" in down);
    assert.match(down.error, /the engine could not be asked: connect ENOENT/);
  } finally {
    await w.done();
  }
});
