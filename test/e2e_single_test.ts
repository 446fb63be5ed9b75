/**
 * End to end on one host: a real `berth agent` process and a real Docker engine. Each test has
 * its own agent (ports, data dir, node name) and its own service names, so tests run in parallel.
 */
import assert from "node:assert/strict";
import {
  type AgentProc,
  docker,
  lookupA,
  lookupSrv,
  portsOf,
  proxyGet,
  removeContainers,
  requireDocker,
  runWeb,
  startAgent,
  uniq,
} from "./harness.ts";
import { sleep, waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

async function hostPort(container: string): Promise<number> {
  const out = await docker("port", container, "80/tcp");
  return Number(out.split("\n")[0]!.split(":").pop());
}

async function instances(
  a: AgentProc,
  service: string,
): Promise<{ ServiceID: string; ServicePort: number }[]> {
  const r = await fetch(`${a.httpUrl}/v1/catalog/service/${service}`);
  return await r.json();
}

Deno.test({
  name: "e2e: a container with SERVICE_NAME answers in DNS and through the proxy; stop removes it",
  ...e2e,
  async fn() {
    await requireDocker();
    const svc = uniq("web");
    const names: string[] = [];
    const agent = await startAgent();
    try {
      const c = await runWeb({
        body: "hello-from-a",
        env: { SERVICE_NAME: svc },
        labels: { "berth.http.host": `${svc}.test` },
      });
      names.push(c);
      const port = await hostPort(c);
      const srv = await waitFor("SRV answer", async () => {
        const s = await lookupSrv(agent.dnsPort, `${svc}.service.berth`);
        return s.length === 1 ? s : undefined;
      });
      assert.equal(srv[0]!.port, port);
      assert.deepEqual(await lookupA(agent.dnsPort, `${svc}.service.berth`), ["127.0.0.1"]);
      const got = await waitFor("proxied response", async () => {
        const r = await proxyGet(agent.proxyPort, `${svc}.test`);
        return r.status === 200 ? r : undefined;
      });
      assert.equal(got.body, "hello-from-a");

      await docker("stop", "-t", "1", c);
      await waitFor(
        "DNS to drop the stopped container",
        async () => (await lookupA(agent.dnsPort, `${svc}.service.berth`)).length === 0,
      );
      const after = await proxyGet(agent.proxyPort, `${svc}.test`);
      assert.notEqual(after.status, 200);
      assert.deepEqual(await instances(agent, svc), []);
    } finally {
      await removeContainers(names);
      await agent.stop();
    }
  },
});

Deno.test({
  name: "e2e: two containers of one service are both served, round robin",
  ...e2e,
  async fn() {
    await requireDocker();
    const svc = uniq("rr");
    const names: string[] = [];
    // Each proxy worker rotates on its own (README "Proxy workers"): one shows the order exactly.
    const agent = await startAgent({ args: ["--proxy-workers", "1"] });
    try {
      for (const body of ["one", "two"]) {
        names.push(
          await runWeb({
            body,
            env: { SERVICE_NAME: svc },
            labels: { "berth.http.host": `${svc}.test` },
          }),
        );
      }
      await waitFor(
        "two SRV answers",
        async () => (await lookupSrv(agent.dnsPort, `${svc}.service.berth`)).length === 2,
      );
      const seen: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await proxyGet(agent.proxyPort, `${svc}.test`);
        assert.equal(r.status, 200);
        seen.push(r.body);
      }
      // Round robin alternates: every consecutive pair hits both containers.
      for (let i = 0; i + 1 < seen.length; i += 2) {
        assert.deepEqual([seen[i], seen[i + 1]].sort(), ["one", "two"], seen.join(","));
      }
    } finally {
      await removeContainers(names);
      await agent.stop();
    }
  },
});

Deno.test({
  name:
    "e2e: an agent restarted while containers run comes back with the same entries, no duplicates",
  ...e2e,
  async fn() {
    await requireDocker();
    const svc = uniq("rs");
    const names: string[] = [];
    let agent = await startAgent();
    try {
      names.push(await runWeb({ body: "x", env: { SERVICE_NAME: svc } }));
      names.push(await runWeb({ body: "y", env: { SERVICE_NAME: svc } }));
      const before = await waitFor("two instances", async () => {
        const i = await instances(agent, svc);
        return i.length === 2 ? i : undefined;
      });
      const ports = portsOf(agent);
      await agent.stop();
      agent = await startAgent({ node: agent.node, dataDir: agent.dataDir, ports });
      // Served from the persisted store at once, then reconciled: still the same two.
      const again = await instances(agent, svc);
      assert.deepEqual(again.map((i) => i.ServiceID).sort(), before.map((i) => i.ServiceID).sort());
      await sleep(500);
      const settled = await instances(agent, svc);
      assert.deepEqual(
        settled.map((i) => i.ServiceID).sort(),
        before.map((i) => i.ServiceID).sort(),
      );
      assert.equal((await lookupA(agent.dnsPort, `${svc}.service.berth`)).length, 1); // one address
      assert.equal((await lookupSrv(agent.dnsPort, `${svc}.service.berth`)).length, 2);
    } finally {
      await removeContainers(names);
      await agent.stop();
    }
  },
});

Deno.test({
  name: "e2e: containers started or removed while the agent was down are reconciled at start",
  ...e2e,
  async fn() {
    await requireDocker();
    const gone = uniq("gone");
    const born = uniq("born");
    const names: string[] = [];
    let agent = await startAgent();
    try {
      const old = await runWeb({ body: "old", env: { SERVICE_NAME: gone } });
      names.push(old);
      await waitFor("first registration", async () => (await instances(agent, gone)).length === 1);
      const ports = portsOf(agent);
      await agent.kill(); // no graceful shutdown: the store must still be right after restart
      await removeContainers([old]);
      names.push(await runWeb({ body: "new", env: { SERVICE_NAME: born } }));
      agent = await startAgent({ node: agent.node, dataDir: agent.dataDir, ports });
      await waitFor(
        "removed container deregistered",
        async () => (await instances(agent, gone)).length === 0,
      );
      await waitFor(
        "new container registered",
        async () => (await instances(agent, born)).length === 1,
      );
      assert.equal((await lookupA(agent.dnsPort, `${gone}.service.berth`)).length, 0);
      assert.equal((await lookupA(agent.dnsPort, `${born}.service.berth`)).length, 1);
    } finally {
      await removeContainers(names);
      await agent.stop();
    }
  },
});

Deno.test({
  name: "e2e: a container whose HEALTHCHECK fails is registered but never served",
  ...e2e,
  async fn() {
    await requireDocker();
    const bad = uniq("sick");
    const good = uniq("well");
    const names: string[] = [];
    const agent = await startAgent();
    try {
      names.push(
        await runWeb({
          body: "sick",
          env: { SERVICE_NAME: bad },
          labels: { "berth.http.host": `${bad}.test` },
          args: ["--health-cmd", "exit 1", "--health-interval", "1s", "--health-retries", "1"],
        }),
      );
      names.push(
        await runWeb({
          body: "well",
          env: { SERVICE_NAME: good },
          args: ["--health-cmd", "true", "--health-interval", "1s"],
        }),
      );
      // The healthy one turns passing; the failing one is in the catalog, never in DNS or proxy.
      await waitFor(
        "healthy container served",
        async () => (await lookupA(agent.dnsPort, `${good}.service.berth`)).length === 1,
      );
      await waitFor(
        "unhealthy container registered",
        async () => (await instances(agent, bad)).length === 1,
      );
      const health = await (await fetch(`${agent.httpUrl}/v1/health/service/${bad}`)).json();
      await waitFor("unhealthy reported critical", async () => {
        const h = await (await fetch(`${agent.httpUrl}/v1/health/service/${bad}`)).json();
        return h[0]?.Checks?.some((c: { Status: string }) => c.Status === "critical");
      });
      assert.equal(health.length, 1);
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(await lookupA(agent.dnsPort, `${bad}.service.berth`), []);
        const r = await proxyGet(agent.proxyPort, `${bad}.test`);
        assert.equal(r.status, 503, r.body);
        await sleep(300);
      }
      const passing = await (await fetch(`${agent.httpUrl}/v1/health/service/${bad}?passing`))
        .json();
      assert.deepEqual(passing, []);
    } finally {
      await removeContainers(names);
      await agent.stop();
    }
  },
});

Deno.test({
  name: "e2e: berth agent rejects a bad flag with one line and exit code 2",
  ...e2e,
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        new URL("../src/main.ts", import.meta.url).pathname,
        "agent",
        "--dns",
        "127.0.0.1:99999",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2);
    const err = new TextDecoder().decode(out.stderr).trim();
    assert.equal(err.split("\n").length, 1, err);
    assert.match(
      err,
      /^berth agent: --dns 127\.0\.0\.1:99999: port "99999" is not in 1\.\.65535; expected IP:PORT/,
    );
  },
});
