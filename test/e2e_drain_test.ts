/**
 * End to end: a real `berth agent` process and its signals (README "Shutdown and reload").
 * SIGTERM drains: a long request through the proxy completes with 200 while the listener is
 * already closed, and the process exits 0 with nothing cut. SIGHUP re-reads `--config`: a
 * changed `dns-ttl` shows in DNS answers and in GET /v1/agent/self; a changed address is named
 * as refused; a file that does not load changes nothing. No Docker needed.
 *
 * Run under the e2e lock: `flock /tmp/berth-e2e.lock deno test -A test/e2e_drain_test.ts`.
 */
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { type AgentProc, apiJson, dnsQuery, proxyGet, signalAgent, startAgent } from "./harness.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

/** A backend answering `/fast` at once and holding `/slow` until `release()`. */
async function slowBackend() {
  const arrived = Promise.withResolvers<void>();
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.url !== "/slow") return void res.end("fast");
    held.push(res);
    arrived.resolve();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    arrived: arrived.promise,
    release: () => {
      for (const res of held.splice(0)) res.end("slow");
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function register(a: AgentProc, body: Record<string, unknown>): Promise<void> {
  const r = await fetch(`${a.httpUrl}/v1/agent/service/register`, {
    method: "PUT",
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 200, await r.text());
}

/** Whether a new TCP connection to the agent's port is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

Deno.test({
  name: "e2e: SIGTERM drains: a request in flight through the proxy completes with 200, exit 0",
  ...e2e,
  fn: async () => {
    const backend = await slowBackend();
    const a = await startAgent({ docker: false, args: ["--drain-timeout", "60s"] });
    try {
      // Without --config, SIGHUP has nothing to reload and says so.
      signalAgent(a, "SIGHUP");
      await waitFor("the nothing-to-reload line", () => a.log().includes("no --config file"));

      await register(a, {
        Name: "slow",
        Address: "127.0.0.1",
        Port: backend.port,
        Meta: { "berth.http.host": "slow.test" },
      });
      await waitFor("the route", async () => {
        return (await proxyGet(a.proxyPort, "slow.test", "/fast")).body === "fast";
      });
      const inFlight = proxyGet(a.proxyPort, "slow.test", "/slow");
      await backend.arrived;
      signalAgent(a, "SIGTERM");
      await waitFor("the drain's first line", () => a.log().includes("berth: draining:"));
      assert.equal(await refused(a.proxyPort), true, "the proxy listener is closed");
      backend.release();
      const r = await inFlight;
      assert.equal(r.status, 200);
      assert.equal(r.body, "slow");
      assert.equal(r.headers.connection, "close");
      const status = await a.exited;
      assert.equal(status.code, 0, a.log());
      assert.match(a.log(), /berth: drained in \d+ ms; 0 request\(s\), stream\(s\) or connection/);
    } finally {
      await a.kill();
      await backend.close();
    }
  },
});

Deno.test({
  name: "e2e: SIGHUP reloads --config: a new dns-ttl is applied, a new address is refused",
  ...e2e,
  fn: async () => {
    const dir = Deno.makeTempDirSync({ prefix: "berth-e2e-reload-" });
    const file = `${dir}/berth.json`;
    const write = (o: unknown) => Deno.writeTextFileSync(file, JSON.stringify(o));
    write({ "dns-ttl": 0 });
    const a = await startAgent({ docker: false, args: ["--config", file] });
    const ttl = async () => {
      const r = await dnsQuery(a.dnsPort, "web.service.berth", "A");
      return r.answers[0]?.ttl;
    };
    const shownTtl = async () =>
      ((await apiJson(a, "/v1/agent/self")) as { DebugConfig: { dnsTtl: number } }).DebugConfig
        .dnsTtl;
    const hup = async (line: string) => {
      const before = a.log().length;
      signalAgent(a, "SIGHUP");
      await waitFor(`"${line}"`, () => a.log().slice(before).includes(line));
      return a.log().slice(before);
    };
    try {
      await register(a, { Name: "web", Address: "127.0.0.1", Port: 8080 });
      assert.equal(await waitFor("the web answer", ttl), 0);
      assert.equal(await shownTtl(), 0);

      write({ "dns-ttl": 30 });
      await hup("berth: reload: applied --dns-ttl");
      // DNS worker threads (the default) follow the main thread's zone by message.
      await waitFor("TTL 30 in answers", async () => await ttl() === 30);
      assert.equal(await shownTtl(), 30);

      write({ "dns-ttl": 30, advertise: "127.0.0.9" });
      const refusal = await hup("berth: reload: no setting that can change live changed");
      assert.match(
        refusal,
        /berth: reload: not applied, a restart is needed to change: --advertise\n/,
      );
      const self = (await apiJson(a, "/v1/agent/self")) as { DebugConfig: { advertise: string } };
      assert.equal(self.DebugConfig.advertise, "127.0.0.1");

      Deno.writeTextFileSync(file, "{ not json");
      const bad = await hup("not reloaded, nothing changed");
      assert.match(
        bad,
        new RegExp(`berth: SIGHUP: ${file} not reloaded, nothing changed: .*not JSON`),
      );
      assert.equal(await ttl(), 30, "the agent runs on with its config");
    } finally {
      await a.stop();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "e2e: a second SIGTERM during the drain stops the agent without waiting for it",
  ...e2e,
  fn: async () => {
    const backend = await slowBackend(); // never released
    const a = await startAgent({ docker: false, args: ["--drain-timeout", "1h"] });
    try {
      await register(a, {
        Name: "slow",
        Address: "127.0.0.1",
        Port: backend.port,
        Meta: { "berth.http.host": "slow.test" },
      });
      await waitFor("the route", async () => {
        return (await proxyGet(a.proxyPort, "slow.test", "/fast")).body === "fast";
      });
      const inFlight = proxyGet(a.proxyPort, "slow.test", "/slow").then(
        (r) => r.status,
        () => "cut",
      );
      await backend.arrived;
      signalAgent(a, "SIGTERM");
      await waitFor("the drain's first line", () => a.log().includes("berth: draining:"));
      signalAgent(a, "SIGTERM");
      const status = await a.exited;
      assert.equal(status.code, 0, a.log());
      assert.match(a.log(), /berth: SIGTERM again, stopping without waiting for the drain/);
      assert.equal(await inFlight, "cut");
    } finally {
      await a.kill();
      await backend.close();
    }
  },
});
