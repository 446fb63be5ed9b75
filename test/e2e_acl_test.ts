/**
 * End to end, ACL enforcement on a real `berth agent --acl-default deny --dns-acl`: the management
 * token `--bootstrap` wrote does everything; a token with `key_prefix "app/" read` gets only its
 * keys from `?recurse` (also from a blocking query that wakes), cannot write, and no token or an
 * unknown one is refused; the CLI sends `--token-file`; DNS names a service only once the
 * anonymous token may read it. No Docker.
 *
 * Run under the e2e lock: `flock /tmp/berth-e2e.lock deno test -A test/e2e_acl_test.ts`.
 */
import assert from "node:assert/strict";
import { type AgentProc, berthCli, dnsQuery, managementToken, startAgent } from "./harness.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };
const ANONYMOUS = "00000000-0000-0000-0000-000000000002";

async function api(
  a: AgentProc,
  token: string | null,
  method: string,
  path: string,
  body?: unknown,
) {
  const r = await fetch(`${a.httpUrl}${path}`, {
    method,
    headers: token === null ? {} : { "X-Consul-Token": token },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, json: () => JSON.parse(text) };
}

Deno.test(
  "e2e ACL: under deny a limited token reads only its prefix (filtered), cannot write; DNS follows the anonymous token",
  e2e,
  async () => {
    const a = await startAgent({ docker: false, aclDefault: "deny", args: ["--dns-acl"] });
    try {
      const m = managementToken(a);
      for (const key of ["app/a", "app/b", "secret/x"]) {
        const r = await api(a, m, "PUT", `/v1/kv/${key}`, "v");
        assert.equal(r.status, 200, r.text);
      }
      const policy = await api(a, m, "PUT", "/v1/acl/policy", {
        Name: "app-read",
        Rules: `key_prefix "app/" { policy = "read" }`,
      });
      assert.equal(policy.status, 200, policy.text);
      const created = await api(a, m, "PUT", "/v1/acl/token", {
        Description: "app reader",
        Policies: [{ Name: "app-read" }],
      });
      assert.equal(created.status, 200, created.text);
      const limited = String(created.json().SecretID);
      const accessor = String(created.json().AccessorID);

      // ?recurse answers only the readable keys, and says it filtered.
      const rec = await api(a, limited, "GET", "/v1/kv/?recurse");
      assert.equal(rec.status, 200, rec.text);
      assert.equal(rec.headers.get("X-Consul-Results-Filtered-By-ACLs"), "true");
      assert.deepEqual(rec.json().map((e: { Key: string }) => e.Key), ["app/a", "app/b"]);
      const all = await api(a, m, "GET", "/v1/kv/?keys");
      assert.deepEqual(all.json(), ["app/a", "app/b", "secret/x"]);

      // A write is refused in Consul's words and changes nothing.
      const write = await api(a, limited, "PUT", "/v1/kv/app/c", "v");
      assert.equal(write.status, 403);
      assert.equal(
        write.text,
        `Permission denied: token with AccessorID '${accessor}' lacks permission 'key:write' on "app/c"\n`,
      );
      assert.equal((await api(a, m, "GET", "/v1/kv/app/c")).status, 404);
      const secret = await api(a, limited, "GET", "/v1/kv/secret/x");
      assert.equal(secret.status, 403);
      assert.match(secret.text, /lacks permission 'key:read' on "secret\/x"/);
      // No token: the anonymous token, which deny leaves nothing; an unknown token: not found.
      const anon = await api(a, null, "GET", "/v1/kv/app/a");
      assert.equal(anon.status, 403);
      assert.match(anon.text, new RegExp(`AccessorID '${ANONYMOUS}' lacks permission 'key:read'`));
      const unknown = await api(a, "not-a-token", "GET", "/v1/kv/app/a");
      assert.deepEqual([unknown.status, unknown.text], [403, "ACL not found\n"]);

      // A blocking ?recurse wakes on a change it may not see and still answers only its keys.
      const index = Number(rec.headers.get("X-Consul-Index"));
      const blocked = api(a, limited, "GET", `/v1/kv/?recurse&index=${index}&wait=10s`);
      assert.equal((await api(a, m, "PUT", "/v1/kv/secret/y", "v")).status, 200);
      const woke = await blocked;
      assert.ok(Number(woke.headers.get("X-Consul-Index")) > index, woke.text);
      assert.deepEqual(woke.json().map((e: { Key: string }) => e.Key), ["app/a", "app/b"]);

      // The CLI with --token-file (the management token file --bootstrap wrote).
      const cli = await berthCli(
        a,
        "kv",
        "get",
        "secret/x",
        "--token-file",
        `${a.dataDir}/management-token`,
      );
      assert.equal(cli.code, 0, cli.out);
      assert.equal(cli.out, "v\n");

      // --dns-acl: a service is named once the anonymous token may read it and its node.
      const reg = await api(a, m, "PUT", "/v1/agent/service/register", {
        Name: "web",
        Address: "10.9.9.9",
        Port: 80,
      });
      assert.equal(reg.status, 200, reg.text);
      assert.equal((await dnsQuery(a.dnsPort, "web.service.berth", "A")).rcode, "NXDOMAIN");
      const open = await api(a, m, "PUT", "/v1/acl/policy", {
        Name: "dns-read",
        Rules: `service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }`,
      });
      assert.equal(open.status, 200, open.text);
      const linked = await api(a, m, "PUT", `/v1/acl/token/${ANONYMOUS}`, {
        Description: "Anonymous Token",
        Policies: [{ Name: "dns-read" }],
      });
      assert.equal(linked.status, 200, linked.text);
      await waitFor("web in DNS", async () => {
        const r = await dnsQuery(a.dnsPort, "web.service.berth", "A");
        return r.answers.some((x) => x.data === "10.9.9.9");
      });
      // The anonymous token now reads services, but still no KV.
      assert.equal(
        (await api(a, null, "GET", "/v1/catalog/services")).json().web !== undefined,
        true,
      );
      assert.equal((await api(a, null, "GET", "/v1/kv/app/a")).status, 403);
    } finally {
      await a.stop();
    }
  },
);
