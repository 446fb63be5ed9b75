/**
 * End to end through a real agent's proxy (requests sent with curl): the HTTP middlewares
 * (README "Middlewares"). A container's labels turn on strip-prefix, basic auth (a hash made by
 * `htpasswd -B`), the allow list and response headers; an API registration of a local backend
 * that echoes what it received turns on rewrite, request headers and a regex redirect, and a
 * bad Meta value is refused with 400. Run under `flock /tmp/berth-e2e.lock`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
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

/** htpasswd -nbB -C 5 alice 'open sesame' */
const ALICE_HASH = "$2y$05$RSHBjHt/M4PB2K2baOOtpONVspbT9e/0THJF5lxdxXnD0/9krfPGu";

interface Reply {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** `curl -i` through the agent's proxy: `host` resolved to it, from `from` (a loopback IP). */
async function curl(
  a: AgentProc,
  host: string,
  path: string,
  opts: { user?: string; from?: string; headers?: string[] } = {},
): Promise<Reply> {
  const out = await new Deno.Command("curl", {
    args: [
      "-s",
      "-i",
      "-m",
      "10",
      "--resolve",
      `${host}:${a.proxyPort}:127.0.0.1`,
      ...(opts.from === undefined ? [] : ["--interface", opts.from]),
      ...(opts.user === undefined ? [] : ["-u", opts.user]),
      ...(opts.headers ?? []).flatMap((h) => ["-H", h]),
      `http://${host}:${a.proxyPort}${path}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const end = text.indexOf("\r\n\r\n");
  const head = text.slice(0, end < 0 ? text.length : end).split("\r\n");
  const headers = new Map<string, string>();
  for (const line of head.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return {
    status: Number(head[0]?.split(" ")[1] ?? 0),
    headers,
    body: end < 0 ? "" : text.slice(end + 4).trim(),
  };
}

Deno.test({
  name: "e2e: labels turn on allow, basic auth, strip-prefix and response headers (curl)",
  ...e2e,
  async fn() {
    await requireDocker();
    const id = uniq("mw");
    const host = `mw-${id}.test`;
    const name = `berth-e2e-${id}`;
    const agent = await startAgent();
    try {
      await runWeb({
        name,
        labels: {
          "berth.service": id,
          "berth.http.host": host,
          "berth.http.path": "/api",
          "berth.http.strip-prefix": "true",
          "berth.http.auth.basic": `alice:${ALICE_HASH}`,
          "berth.http.auth.realm": "Staff",
          "berth.http.allow": "127.0.0.1,10.0.0.0/8",
          "berth.http.response-header.X-Frame-Options": "DENY",
          "berth.http.response-headers.remove": "ETag,Accept-Ranges",
        },
        script: "mkdir -p /www && echo users > /www/users && echo api-users > /www/api_users && " +
          "exec httpd -f -p 80 -h /www",
      });
      const alice = "alice:open sesame";
      // The instance has /users, not /api/users: a 200 with "users" means the prefix went.
      const ok = await waitFor("the route through the proxy", async () => {
        const r = await curl(agent, host, "/api/users", { user: alice });
        return r.status === 200 ? r : undefined;
      });
      assert.equal(ok.body, "users");
      assert.equal(ok.headers.get("x-frame-options"), "DENY");
      assert.equal(ok.headers.has("etag"), false, "removed");
      assert.equal(ok.headers.has("accept-ranges"), false, "removed");
      assert.ok(ok.headers.has("last-modified"), "other headers pass");

      const none = await curl(agent, host, "/api/users");
      assert.equal(none.status, 401);
      assert.equal(none.headers.get("www-authenticate"), 'Basic realm="Staff", charset="UTF-8"');
      assert.equal((await curl(agent, host, "/api/users", { user: "alice:wrong" })).status, 401);
      assert.equal(
        (await curl(agent, host, "/api/users", { user: "bob:open sesame" })).status,
        401,
      );
      // Remembered: the same right password again, several times.
      for (let i = 0; i < 3; i++) {
        assert.equal((await curl(agent, host, "/api/users", { user: alice })).status, 200);
      }
      // Another loopback address is not on the list: 403 before any password is looked at.
      const denied = await curl(agent, host, "/api/users", { user: alice, from: "127.0.0.2" });
      assert.equal(denied.status, 403);
      assert.match(denied.body, /127\.0\.0\.2/);
    } finally {
      await removeContainers([name]);
      await agent.stop();
    }
  },
});

/** A local HTTP backend answering with the request line and headers it got, as JSON. */
function echoBackend(): { port: number; close(): Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const u = new URL(req.url);
    return Response.json({
      url: u.pathname + u.search,
      headers: Object.fromEntries(req.headers),
    });
  });
  return { port: server.addr.port, close: () => server.shutdown() };
}

Deno.test({
  name: "e2e: API Meta turns on rewrite, request headers and a regex redirect; bad Meta is 400",
  ...e2e,
  async fn() {
    const id = uniq("mwapi");
    const host = `echo-${id}.test`;
    const backend = echoBackend();
    const agent = await startAgent({ docker: false, args: ["--proxy-workers", "1"] });
    try {
      const register = (meta: Record<string, string>) =>
        fetch(`${agent.httpUrl}/v1/agent/service/register`, {
          method: "PUT",
          body: JSON.stringify({
            ID: id,
            Name: id,
            Address: "127.0.0.1",
            Port: backend.port,
            Meta: { "berth.http.host": host, ...meta },
          }),
        });
      const bad = await register({ "berth.http.rewrite": "^/(old /new" });
      assert.equal(bad.status, 400);
      assert.match(await bad.text(), /Meta\.berth\.http\.rewrite/);
      const badAuth = await register({ "berth.http.auth.basic": "alice:plaintext" });
      assert.equal(badAuth.status, 400);
      const good = await register({
        "berth.http.rewrite": "^/old/(.*) /new/$1",
        "berth.http.request-header.X-Env": "prod",
        "berth.http.request-headers.remove": "X-Debug",
        "berth.http.redirect":
          `^http://echo-${id}\\.test(:\\d+)?/moved/(.*) https://elsewhere.test/$2 301`,
      });
      assert.equal(good.status, 200, await good.text());

      const echo = await waitFor("the rewritten route", async () => {
        const r = await curl(agent, host, "/old/a/b?c=1", {
          headers: ["X-Debug: 1", "X-Env: dev"],
        });
        return r.status === 200 ? r : undefined;
      });
      const got = JSON.parse(echo.body);
      assert.equal(got.url, "/new/a/b?c=1");
      assert.equal(got.headers["x-env"], "prod");
      assert.equal(got.headers["x-debug"], undefined);
      assert.equal(got.headers["x-replaced-path"], "/old/a/b");
      const plain = JSON.parse((await curl(agent, host, "/other?x=1")).body);
      assert.equal(plain.url, "/other?x=1", "no match: unchanged");

      const moved = await curl(agent, host, "/moved/p?q=2");
      assert.equal(moved.status, 301);
      assert.equal(moved.headers.get("location"), "https://elsewhere.test/p?q=2");
    } finally {
      await agent.stop();
      await backend.close();
    }
  },
});

Deno.test({
  name: "e2e: a bad basic-auth label fails closed: 401 for every request, one problem logged",
  ...e2e,
  async fn() {
    await requireDocker();
    const id = uniq("mwbad");
    const host = `bad-${id}.test`;
    const name = `berth-e2e-${id}`;
    const agent = await startAgent();
    try {
      await runWeb({
        name,
        body: "secret",
        labels: {
          "berth.service": id,
          "berth.http.host": host,
          // What compose leaves of a hash whose `$` were not doubled.
          "berth.http.auth.basic": "alice:BjHt/M4PB2K2baOOtpONVspbT9e/0THJF5lxdxXnD0/9krfPGu",
        },
      });
      const r = await waitFor("the route answers", async () => {
        const r = await curl(agent, host, "/", {
          user: `alice:${Buffer.from("x").toString("hex")}`,
        });
        return r.status === 404 ? undefined : r;
      });
      assert.equal(r.status, 401);
      assert.notEqual(r.body, "secret");
      const log = await waitFor("the problem logged", async () => {
        const text = await Deno.readTextFile(`${agent.dataDir}/agent.log`);
        return text.includes("berth.http.auth.basic (value hidden)") ? text : undefined;
      });
      const lines = log.split("\n").filter((l) => l.includes("berth.http.auth.basic"));
      assert.equal(lines.length, 1, lines.join("\n"));
      assert.match(lines[0]!, /every request gets 401 \(none\)/);
      // The value (a mangled hash, or a password where its hash belongs) is never logged.
      assert.ok(!log.includes("BjHt/M4PB2K2baOOtpONVspbT9e"), lines[0]);
    } finally {
      await removeContainers([name]);
      await agent.stop();
    }
  },
});
