/**
 * End to end: how an agent starts on a data directory. One agent per data directory, under one
 * node name, and a stored TCP route can never keep the agent from starting. No Docker needed.
 */
import assert from "node:assert/strict";
import { type AgentProc, freePort, PERMISSIONS, portsOf, startAgent, uniq } from "./harness.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };
const MAIN = new URL("../src/main.ts", import.meta.url).pathname;
/** A refused start exits at once; this only bounds a test that would otherwise hang. */
const REFUSAL_WAIT_MS = 30_000;

/** Runs `berth agent ARGS` that is expected to refuse to start; returns its code and stderr. */
async function refusedStart(args: string[]): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSIONS, MAIN, "agent", ...args],
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), REFUSAL_WAIT_MS);
  const out = await child.output();
  clearTimeout(timer);
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

async function listenArgs(a: { node: string; dataDir: string }): Promise<string[]> {
  return [
    "--node",
    a.node,
    "--data-dir",
    a.dataDir,
    "--docker",
    "off",
    "--http",
    `127.0.0.1:${await freePort()}`,
    "--dns",
    `127.0.0.1:${await freePort()}`,
    "--proxy-http",
    `127.0.0.1:${await freePort()}`,
    "--proxy-https",
    `127.0.0.1:${await freePort()}`,
    "--bind",
    `127.0.0.1:${await freePort()}`,
  ];
}

Deno.test({
  name: "e2e: a second agent on the same --data-dir is refused, naming the holder's pid",
  ...e2e,
  async fn() {
    const a = await startAgent({ docker: false });
    try {
      const r = await refusedStart([
        "--bootstrap",
        ...await listenArgs({ node: uniq("n-"), dataDir: a.dataDir }),
      ]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /cannot start: --data-dir .* is in use by another berth agent \(pid \d+\); give each agent/,
      );
      assert.doesNotMatch(r.stderr, /Uncaught|at .*\.ts:\d+/);
      // The first agent is untouched and still the only leader.
      const s = await waitFor("a leader", async () => {
        const st = await (await fetch(`${a.httpUrl}/v1/berth/status`)).json();
        return st.leader !== null ? st : undefined;
      });
      assert.equal(s.leader, a.node);
    } finally {
      await a.stop();
    }
  },
});

Deno.test({
  name: "e2e: restarting a data directory under another --node is refused, naming both",
  ...e2e,
  async fn() {
    const a = await startAgent({ docker: false, node: uniq("cfgnode-") });
    await a.stop();
    const other = uniq("flagnode-");
    const r = await refusedStart(await listenArgs({ node: other, dataDir: a.dataDir }));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`belongs to node "${a.node}", not "${other}"`));
    // Under its own name it starts again, still the leader of its cluster.
    const again = await startAgent({ docker: false, node: a.node, dataDir: a.dataDir });
    try {
      const s = await waitFor("a leader", async () => {
        const st = await (await fetch(`${again.httpUrl}/v1/berth/status`)).json();
        return st.leader !== null ? st : undefined;
      });
      assert.equal(s.leader, a.node);
    } finally {
      await again.stop();
    }
  },
});

Deno.test({
  name: "e2e: a stored TCP route on the agent's API port is refused and the agent restarts fine",
  ...e2e,
  async fn() {
    let a: AgentProc = await startAgent({ docker: false });
    const ports = portsOf(a);
    try {
      const reg = await fetch(`${a.httpUrl}/v1/agent/service/register`, {
        method: "PUT",
        body: JSON.stringify({
          Name: "consul",
          ID: "consul-1",
          Address: "127.0.0.1",
          Port: 1,
          Meta: { "berth.tcp.port": String(ports.http) },
        }),
      });
      assert.equal(reg.status, 200, await reg.text());
      const failed = await waitFor("the route reported failed", async () => {
        const r = await (await fetch(`${a.httpUrl}/v1/berth/routes`)).json();
        return r.tcp.find((t: { service: string }) => t.service === "consul");
      });
      assert.equal(failed.state, "failed");
      assert.match(failed.error, /the agent's own api listener/);
      assert.match(a.log(), /proxy: refused TCP route .* of service consul/);

      // Before the fix the stored route bound the API's port first and the restart died with
      // "api: cannot listen on … (address in use)".
      await a.stop();
      a = await startAgent({
        docker: false,
        node: a.node,
        dataDir: a.dataDir,
        ports,
        samePorts: true, // the stored route names the API's port
      });
      const routes = await waitFor("routes after the restart", async () => {
        const r = await (await fetch(`${a.httpUrl}/v1/berth/routes`)).json();
        return r.tcp.length > 0 ? r : undefined;
      });
      assert.equal(routes.tcp[0].state, "failed");
      assert.equal((await fetch(`${a.httpUrl}/v1/status/leader`)).status, 200);
    } finally {
      await a.stop();
    }
  },
});
