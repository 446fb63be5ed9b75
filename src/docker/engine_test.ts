/**
 * Against a real Docker engine (CI starts one with scripts/docker-up.sh and builds the image with
 * scripts/test-image.sh). Fails, not skips, when the engine is unreachable.
 */
import assert from "node:assert/strict";
import { LocalCluster } from "../cluster/testing.ts";
import { type Health, type Instance, instanceHealth, Store } from "../store/mod.ts";
import { DockerWatcher } from "./watcher.ts";
import { waitFor as until } from "../../test/wait.ts";

/** The instance's health as every view derives it (its node is this live one). */
function health(i: Instance): Health {
  return instanceHealth(i, "alive");
}

const SOCKET = "/var/run/docker.sock";
const IMAGE = "berth-test:latest";

async function docker(...args: string[]): Promise<string> {
  const out = await new Deno.Command("docker", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(`docker ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return text;
}

async function requireEngine(): Promise<void> {
  try {
    await docker("info", "--format", "{{.ServerVersion}}");
  } catch (e) {
    throw new Error(
      `no Docker engine at ${SOCKET} (${(e as Error).message.split("\n")[0]}); ` +
        "run scripts/docker-up.sh first",
    );
  }
  try {
    await docker("image", "inspect", IMAGE);
  } catch {
    const out = await new Deno.Command("bash", { args: ["scripts/test-image.sh"] }).output();
    if (!out.success) throw new Error(`cannot build ${IMAGE}: run scripts/test-image.sh`);
  }
}

function uniqueName(what: string): string {
  return `berth-t-${what}-${crypto.randomUUID().slice(0, 8)}`;
}

async function withWatcher(
  fn: (w: { store: Store; node: string; names: string[] }) => Promise<void>,
): Promise<void> {
  await requireEngine();
  const node = `n${crypto.randomUUID().slice(0, 6)}`;
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node, address: "127.0.0.1:8300" });
  const lines: string[] = [];
  const watcher = new DockerWatcher({
    store,
    propose: (c) => cluster.propose(c),
    node,
    advertise: "127.0.0.1",
    internal: false,
    dockerUrl: `unix://${SOCKET}`,
    edgeDomain: null,
    reconcileIntervalMs: 60_000,
    log: (l) => lines.push(l),
  });
  const names: string[] = [];
  try {
    await watcher.start();
    assert.ok(lines.includes(`docker: connected to unix://${SOCKET}`), lines.join("\n"));
    await fn({ store, node, names });
  } finally {
    await watcher.close();
    await cluster.close();
    store.close();
    for (const n of names) await docker("rm", "-f", n).catch(() => {});
  }
}

function find(store: Store, id: string): Instance | undefined {
  return store.instance(id);
}

Deno.test("DockerWatcher registers a published port, then kill → critical → deregistered", async () => {
  await withWatcher(async ({ store, node, names }) => {
    const name = uniqueName("kill");
    names.push(name);
    await docker("run", "-d", "--name", name, "-p", "127.0.0.1::80", "-e", "SERVICE_NAME=x", IMAGE);
    const published = await docker("port", name, "80/tcp");
    const hostPort = Number(published.split("\n")[0]!.split(":").at(-1));
    const id = `${node}:${name}:80`;
    const i = await until("registration", () => find(store, id));
    assert.equal(i.service, "x");
    assert.equal(i.address, "127.0.0.1");
    assert.equal(i.port, hostPort);
    assert.equal(health(i).status, "passing");
    const res = await fetch(`http://127.0.0.1:${i.port}/`);
    assert.match(await res.text(), /berth-test/);

    // busybox httpd as PID 1 ignores SIGTERM, so the container keeps running after this kill:
    // the instance must leave service at once and stay out while the container is stopping.
    await docker("kill", "-s", "TERM", name);
    await until("critical on kill", () => {
      const r = find(store, id);
      return r?.docker?.state === "stopping" ? r : undefined;
    });
    assert.equal(health(find(store, id)!).status, "critical");
    await docker("kill", name);
    await until("deregistration after kill", () => find(store, id) ? undefined : true);
  });
});

Deno.test("DockerWatcher deregisters a stopped container", async () => {
  await withWatcher(async ({ store, node, names }) => {
    const name = uniqueName("stop");
    names.push(name);
    await docker("run", "-d", "--name", name, "-p", "127.0.0.1::80", IMAGE);
    const id = `${node}:${name}:80`;
    const i = await until("registration", () => find(store, id));
    assert.equal(i.service, "berth-test");
    await docker("stop", "-t", "1", name);
    await until("deregistration after stop", () => find(store, id) ? undefined : true);
  });
});

Deno.test("DockerWatcher keeps an unhealthy container critical and a healthy one passing", async () => {
  await withWatcher(async ({ store, node, names }) => {
    const bad = uniqueName("unhealthy");
    const good = uniqueName("healthy");
    names.push(bad, good);
    await docker(
      "run",
      "-d",
      "--name",
      bad,
      "-p",
      "127.0.0.1::80",
      "--health-cmd",
      "exit 1",
      "--health-interval",
      "1s",
      "--health-retries",
      "1",
      IMAGE,
    );
    await docker(
      "run",
      "-d",
      "--name",
      good,
      "-p",
      "127.0.0.1::80",
      "--health-cmd",
      "wget -q -O /dev/null http://127.0.0.1/",
      "--health-interval",
      "1s",
      IMAGE,
    );
    const badId = `${node}:${bad}:80`;
    const goodId = `${node}:${good}:80`;
    // Every status the unhealthy container's instance ever has: it must never be passing.
    const seen = new Set<string>();
    const unsubscribe = store.subscribe(() => {
      const r = find(store, badId);
      if (r !== undefined) seen.add(health(r).status);
    });
    const first = await until("unhealthy registration", () => find(store, badId));
    seen.add(health(first).status);
    assert.equal(health(first).status, "critical");
    assert.match(health(first).output, /^docker health: (starting|unhealthy)/);
    await until("healthy registration", () => find(store, goodId));
    await until("healthy → passing", () => {
      const r = find(store, goodId);
      return r !== undefined && health(r).status === "passing" ? r : undefined;
    });
    await until("unhealthy reported", () => {
      const r = find(store, badId);
      return r?.docker?.state === "unhealthy" ? r : undefined;
    });
    assert.equal(health(find(store, badId)!).status, "critical");
    unsubscribe();
    assert.deepEqual([...seen], ["critical"]);
  });
});
