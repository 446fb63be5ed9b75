/**
 * End to end: the proxy on worker threads (`--proxy-workers 2`) in a real `berth agent`,
 * proxying to a real upstream (a container), with an ejection shared by the workers.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { proxyGet, removeContainers, requireDocker, runWeb, startAgent, uniq } from "./harness.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name:
    "e2e proxy workers: --proxy-workers 2 serves a container on every connection and reports an ejection",
  ...e2e,
  async fn() {
    await requireDocker();
    const svc = uniq("pw");
    const names: string[] = [];
    const agent = await startAgent({ args: ["--proxy-workers", "2"] });
    try {
      await waitFor(
        "the workers up",
        () => /proxy: 2 worker threads listening on 127\.0\.0\.1:\d+/.test(agent.log()),
      );
      names.push(
        await runWeb({
          body: "hello-from-worker",
          env: { SERVICE_NAME: svc },
          labels: { "berth.http.host": `${svc}.test` },
        }),
      );
      await waitFor("proxied response", async () => {
        const r = await proxyGet(agent.proxyPort, `${svc}.test`);
        return r.status === 200;
      });
      // Many connections: the kernel spreads them over both workers; every one is served.
      const got = await Promise.all(
        Array.from({ length: 40 }, () => proxyGet(agent.proxyPort, `${svc}.test`)),
      );
      assert.deepEqual(
        new Set(got.map((r) => `${r.status} ${r.body}`)),
        new Set(["200 hello-from-worker"]),
      );

      // An instance that refuses connections: ejected by one worker, skipped by both, reported.
      const dead = net.createServer();
      await new Promise<void>((r) => dead.listen(0, "127.0.0.1", r));
      const deadPort = (dead.address() as net.AddressInfo).port;
      await new Promise<void>((r) => dead.close(() => r()));
      const reg = await fetch(`${agent.httpUrl}/v1/agent/service/register`, {
        method: "PUT",
        body: JSON.stringify({
          Name: svc,
          ID: `${svc}-dead`,
          Address: "127.0.0.1",
          Port: deadPort,
          Meta: { "berth.http.host": `${svc}.test` },
        }),
      });
      assert.equal(reg.status, 200, await reg.text());
      const routes = await waitFor("the dead instance ejected", async () => {
        const r = await proxyGet(agent.proxyPort, `${svc}.test`);
        assert.equal(r.status, 200, "retried on the container");
        const view = await (await fetch(`${agent.httpUrl}/v1/berth/routes`)).json();
        return view.ejected.length > 0 ? view : undefined;
      });
      assert.deepEqual(routes.ejected.map((e: { instance: string }) => e.instance), [
        `${svc}-dead`,
      ]);
      assert.equal(routes.listen, `127.0.0.1:${agent.proxyPort}`);
      assert.ok(routes.http.some((h: { service: string }) => h.service === svc));
      assert.equal(
        agent.log().match(/instance \S+-dead .* ejected/g)?.length,
        1,
        "logged by the worker that ejected it",
      );
      assert.doesNotMatch(agent.log(), /proxy: worker \d stopped/);
    } finally {
      await removeContainers(names);
      await agent.stop();
    }
  },
});
