/**
 * End to end with two real berth members and two containers: `berth.lb=hash` with
 * `berth.lb.hash=header:X-User` (labels) sends each user to the same container through either
 * member; `berth.lb=sticky_cookie` (API Meta, the same containers) keeps a curl cookie jar on one
 * container through both members and moves it when that container stops; and
 * `berth.http.max-conns=1` with a queue of 2 lets 1 request in flight and 2 wait over both proxy
 * worker threads, and answers the others 503 (statuses counted). Run under `flock /tmp/berth-e2e.lock`.
 *
 * @module
 */
import assert from "node:assert/strict";
import http from "node:http";
import type net from "node:net";
import {
  type AgentProc,
  docker,
  removeContainers,
  requireDocker,
  runWeb,
  startAgent,
  startCluster,
  stopAll,
  uniq,
} from "./harness.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

/** GET `/` with `host` and `headers` through a member's proxy (its own loopback address). */
function get(
  a: AgentProc,
  host: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: a.host, port: a.proxyPort, path: "/", headers: { host, ...headers }, agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => body += d);
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
        res.on("error", reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** curl through a member's proxy with a cookie jar: the body and the Set-Cookie lines. */
async function curlJar(
  a: AgentProc,
  host: string,
  jar: string,
): Promise<{ body: string; setCookie: string[] }> {
  const out = await new Deno.Command("curl", {
    args: [
      ...["-sS", "-m", "10", "-D", "-", "-b", jar, "-c", jar],
      ...["--resolve", `${host}:${a.proxyPort}:${a.host}`, `http://${host}:${a.proxyPort}/`],
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const [head, body] = text.split("\r\n\r\n");
  const setCookie = head!.split("\r\n").filter((l) => /^set-cookie:/i.test(l));
  return { body: body!.trim(), setCookie };
}

/** The host port Docker published container port 80 on. */
async function publishedPort(name: string): Promise<number> {
  const out = await docker("port", name, "80/tcp");
  return Number(/:(\d+)\s*$/m.exec(out)![1]);
}

Deno.test({
  name:
    "e2e lb: hash by header and sticky cookie pick the same container through either member; the cookie moves when its container stops",
  ...e2e,
  async fn() {
    await requireDocker();
    const svc = uniq("lbh");
    const names: string[] = [];
    const agents = await startCluster(2, { docker: [0] });
    const jarDir = await Deno.makeTempDir();
    try {
      const [m1, m2] = agents as [AgentProc, AgentProc];
      const hashed = `${svc}.test`;
      for (const body of ["one", "two"]) {
        names.push(
          await runWeb({
            body,
            env: { SERVICE_NAME: svc },
            labels: {
              "berth.http.host": hashed,
              "berth.lb": "hash",
              "berth.lb.hash": "header:X-User",
            },
          }),
        );
      }
      for (const m of agents) {
        await waitFor(`both containers routed by ${m.node}`, async () => {
          const seen = new Set<string>();
          for (let i = 0; i < 8; i++) seen.add((await get(m, hashed)).body);
          return seen.size === 2;
        }, { timeoutMs: 30_000 });
      }
      // Each user lands on one container, the same through both members and both workers.
      const placed = new Map<string, string>();
      for (let u = 0; u < 16; u++) {
        const headers = { "x-user": `user-${u}` };
        const first = (await get(m1, hashed, headers)).body;
        for (const m of [m1, m2, m1, m2]) {
          assert.equal((await get(m, hashed, headers)).body, first, `user-${u} via ${m.node}`);
        }
        placed.set(`user-${u}`, first);
      }
      assert.deepEqual(new Set(placed.values()), new Set(["one", "two"]));

      // The same containers as a sticky service registered through the API (TCP checks).
      const sticky = `${svc}-s.test`;
      const ports = await Promise.all(names.map(publishedPort));
      for (const [i, port] of ports.entries()) {
        const reg = await fetch(`${m1.httpUrl}/v1/agent/service/register`, {
          method: "PUT",
          body: JSON.stringify({
            Name: `${svc}-s`,
            ID: `${svc}-s-${i}`,
            Address: "127.0.0.1",
            Port: port,
            Meta: { "berth.http.host": sticky, "berth.lb": "sticky_cookie" },
            Check: { CheckID: `${svc}-s-${i}-tcp`, TCP: `127.0.0.1:${port}`, Interval: "1s" },
          }),
        });
        assert.equal(reg.status, 200, await reg.text());
      }
      const jar = `${jarDir}/jar`;
      await Deno.writeTextFile(jar, "");
      const first = await waitFor("the sticky service served", async () => {
        const r = await curlJar(m1, sticky, jar);
        return r.setCookie.length === 1 ? r : undefined;
      }, { timeoutMs: 30_000 });
      assert.match(
        first.setCookie[0]!,
        /^set-cookie: berth_[\w-]+-s=[0-9a-f]{16}; Path=\/; HttpOnly; SameSite=Lax\s*$/i,
      );
      const owner = first.body;
      for (const m of [m2, m1, m2, m1, m2]) {
        const r = await curlJar(m, sticky, jar);
        assert.equal(r.body, owner, `the cookie keeps the client on ${owner} via ${m.node}`);
        assert.deepEqual(r.setCookie, [], "a cookie that matches is not set again");
      }
      // Its container stops: its check fails, the next request goes to the other one, which
      // sets the cookie; both members then keep the client there.
      await docker("stop", "-t", "0", names[owner === "one" ? 0 : 1]!);
      // Only the other container's page counts: a 502/503 the proxy answered while the check
      // had not yet seen the stop is neither container's and sets no cookie.
      const other = owner === "one" ? "two" : "one";
      const moved = await waitFor("the client moved", async () => {
        const r = await curlJar(m2, sticky, jar).catch(() => undefined);
        return r?.body === other ? r : undefined;
      }, { timeoutMs: 30_000 });
      assert.equal(moved.setCookie.length, 1);
      for (const m of [m1, m2]) assert.equal((await curlJar(m, sticky, jar)).body, moved.body);
    } finally {
      await removeContainers(names);
      await stopAll(agents);
      await Deno.remove(jarDir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "e2e lb: berth.http.max-conns=1 with a queue of 2 on two proxy workers: 1 in flight, 2 wait, the other requests get 503",
  ...e2e,
  async fn() {
    // An instance that holds every request until released.
    const held: http.ServerResponse[] = [];
    let inFlightMax = 0;
    const server = http.createServer((req, res) => {
      req.resume();
      held.push(res);
      inFlightMax = Math.max(inFlightMax, held.filter((r) => !r.writableEnded).length);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    const agent = await startAgent({ docker: false, args: ["--proxy-workers", "2"] });
    const host = `${uniq("mc")}.test`;
    try {
      const reg = await fetch(`${agent.httpUrl}/v1/agent/service/register`, {
        method: "PUT",
        body: JSON.stringify({
          Name: "capped",
          Address: "127.0.0.1",
          Port: port,
          Meta: {
            "berth.http.host": host,
            "berth.http.max-conns": "1",
            "berth.http.max-conns.queue": "2",
          },
        }),
      });
      assert.equal(reg.status, 200, await reg.text());
      // Routed: a request comes back (everything that arrives meanwhile is released).
      const warmup = setInterval(() => {
        for (const h of held) if (!h.writableEnded) h.end("ok");
      }, 20);
      try {
        await waitFor("the route", async () => (await get(agent, host)).status === 200);
      } finally {
        clearInterval(warmup);
      }
      held.length = 0;
      inFlightMax = 0;
      // 12 at once, spread over both workers: 1 goes through, 2 wait, 9 are turned away.
      const replies = Array.from({ length: 12 }, () => get(agent, host));
      const statuses: number[] = [];
      for (const r of replies) {
        r.then((x) => statuses.push(x.status));
      }
      await waitFor("the requests past the queue turned away", () => statuses.length >= 9);
      assert.ok(statuses.every((s) => s === 503), `only 503s before any release: ${statuses}`);
      // Release everything that reaches the instance until all are answered.
      const done = Promise.all(replies);
      const releasing = setInterval(() => {
        for (const h of held) if (!h.writableEnded) h.end("ok");
      }, 20);
      const all = (await done).map((r) => r.status);
      clearInterval(releasing);
      const ok = all.filter((s) => s === 200).length;
      const busy = all.filter((s) => s === 503).length;
      assert.equal(ok + busy, 12, `statuses ${all}`);
      assert.equal(ok, 3, `served: 1 in flight + 2 queued over both workers (${all})`);
      assert.equal(inFlightMax, 1, "one in flight over both workers");
    } finally {
      for (const h of held) h.end();
      await agent.stop();
      await new Promise<void>((r) => server.close(() => r()));
    }
  },
});
