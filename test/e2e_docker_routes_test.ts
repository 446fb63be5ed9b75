/**
 * End to end with a real Docker engine and a real agent: a container with two published ports
 * routes each port's `berth.http.<port>.host` to that port through the proxy (requests sent
 * with curl), and `--expose-by-default=false` registers only the containers labelled
 * `berth.enable=true` or with `SERVICE_NAME` (Registrator's `-explicit`). Run under `flock /tmp/berth-e2e.lock`.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type AgentProc,
  removeContainers,
  requireDocker,
  runWeb,
  startAgent,
  uniq,
} from "./harness.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

/** GET `http://<host>/` through the agent's proxy with curl; status and body. */
async function curl(a: AgentProc, host: string): Promise<{ status: number; body: string }> {
  const out = await new Deno.Command("curl", {
    args: [
      "-s",
      "-m",
      "5",
      "-w",
      "\n%{http_code}",
      "--resolve",
      `${host}:${a.proxyPort}:127.0.0.1`,
      `http://${host}:${a.proxyPort}/`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const nl = text.lastIndexOf("\n");
  return { status: Number(text.slice(nl + 1)), body: text.slice(0, nl).trim() };
}

async function catalog(a: AgentProc, service: string): Promise<{ ServiceID: string }[]> {
  const r = await fetch(`${a.httpUrl}/v1/catalog/service/${service}`);
  return await r.json();
}

Deno.test({
  name: "e2e: berth.http.<port>.host routes each host of a two-port container to its own port",
  ...e2e,
  async fn() {
    await requireDocker();
    const id = uniq("pp");
    const [www, admin] = [`www-${id}.test`, `admin-${id}.test`];
    const name = `berth-e2e-${id}`;
    const agent = await startAgent();
    try {
      await runWeb({
        name,
        labels: {
          "berth.service": id,
          "berth.http.80.host": www,
          "berth.http.8080.host": admin,
        },
        args: ["-p", "127.0.0.1::8080"],
        script:
          "mkdir -p /a /b && echo port-80 > /a/index.html && echo port-8080 > /b/index.html && " +
          "httpd -p 80 -h /a && exec httpd -f -p 8080 -h /b",
      });
      for (const [host, body] of [[www, "port-80"], [admin, "port-8080"]] as const) {
        const got = await waitFor(`${host} through the proxy`, async () => {
          const r = await curl(agent, host);
          return r.status === 200 ? r : undefined;
        });
        assert.equal(got.body, body, host);
      }
      // Each port is its own service; neither answers the other's host.
      assert.equal((await catalog(agent, `${id}-80`)).length, 1);
      assert.equal((await catalog(agent, `${id}-8080`)).length, 1);
      assert.equal((await curl(agent, `other-${id}.test`)).status, 404);
    } finally {
      await removeContainers([name]);
      await agent.stop();
    }
  },
});

Deno.test({
  name:
    "e2e: --expose-by-default=false registers only the containers labelled berth.enable=true or with SERVICE_NAME",
  ...e2e,
  async fn() {
    await requireDocker();
    const svc = uniq("optin");
    const names: string[] = [];
    const agent = await startAgent({ args: ["--expose-by-default=false"] });
    try {
      // The unlabelled one starts first: by the time the labelled one is registered, the
      // watcher has listed both. berth.service names its service, but only berth.enable=true
      // or Registrator's SERVICE_NAME (its -explicit mode) opts a container in.
      names.push(await runWeb({ body: "plain", labels: { "berth.service": svc } }));
      const explicit = await runWeb({ body: "explicit", env: { SERVICE_NAME: `${svc}-x` } });
      names.push(explicit);
      const enabled = await runWeb({
        body: "enabled",
        labels: { "berth.service": svc, "berth.enable": "true", "berth.http.host": `${svc}.test` },
      });
      names.push(enabled);
      const got = await waitFor("the labelled container registered", async () => {
        const list = await catalog(agent, svc);
        return list.length > 0 ? list : undefined;
      });
      assert.deepEqual(got.map((i) => i.ServiceID), [`${agent.node}:${enabled}:80`]);
      const named = await waitFor("the SERVICE_NAME container registered", async () => {
        const list = await catalog(agent, `${svc}-x`);
        return list.length > 0 ? list : undefined;
      });
      assert.deepEqual(named.map((i) => i.ServiceID), [`${agent.node}:${explicit}:80`]);
      for (let i = 0; i < 4; i++) {
        const r = await curl(agent, `${svc}.test`);
        assert.deepEqual([r.status, r.body], [200, "enabled"]);
      }
    } finally {
      await removeContainers(names);
      await agent.stop();
    }
  },
});
