/**
 * ACL end to end on a real agent with `--acl-default deny`: the bootstrap management token
 * (file 0600, not in the log), policies and tokens made with the `berth acl` CLI, and the token
 * used by Consul's own client library (npm `consul`): it may do what its policy allows, nothing
 * else, and nothing once deleted.
 */
import assert from "node:assert/strict";
import Consul from "consul";
import { berthCli, managementToken, startAgent } from "./harness.ts";

/** The consul client's error for a 403 whose body matches `want` (it keeps the response). */
const refused = (want: RegExp) => (e: unknown) => {
  const r = (e as { response?: { statusCode?: number; body?: unknown } }).response;
  assert.equal(r?.statusCode, 403, String(e));
  assert.match(String(r?.body), want);
  return true;
};

Deno.test("e2e: bootstrap management token, berth acl CLI, and the consul client under a policy", async () => {
  const a = await startAgent({ docker: false, aclDefault: "deny" });
  const dir = Deno.makeTempDirSync({ prefix: "berth-acl-e2e-" });
  try {
    const mgmt = managementToken(a);
    assert.equal(Deno.statSync(`${a.dataDir}/management-token`).mode! & 0o777, 0o600);
    assert.ok(!a.log().includes(mgmt), "the management token is in no log line");

    Deno.writeTextFileSync(
      `${dir}/app.hcl`,
      `key_prefix "app/" { policy = "write" }\nkey "app/secret" { policy = "deny" }\n`,
    );
    let r = await berthCli(
      a,
      "acl",
      "policy",
      "create",
      "--name",
      "app-rw",
      "--rules",
      `@${dir}/app.hcl`,
      "--token",
      mgmt,
    );
    assert.equal(r.code, 0, r.out);
    r = await berthCli(a, "acl", "token", "create", "--policy-name", "app-rw", "--token", mgmt);
    assert.equal(r.code, 0, r.out);
    const secret = /^SecretID: +(\S+)$/m.exec(r.out)![1]!;
    const accessor = /^AccessorID: +(\S+)$/m.exec(r.out)![1]!;
    // Without the management token the ACL commands are refused.
    r = await berthCli(a, "acl", "token", "list", "--token", secret);
    assert.equal(r.code, 1);
    assert.match(
      r.out,
      /403: Permission denied: token with AccessorID '[^']+' lacks permission 'acl:read'/,
    );
    r = await berthCli(a, "acl", "token", "list", "--token", mgmt);
    assert.ok(r.out.includes(accessor) && !r.out.includes(secret), r.out);

    const url = new URL(a.httpUrl);
    const consul = (token?: string) =>
      new Consul({
        host: url.hostname,
        port: Number(url.port),
        ...(token === undefined ? {} : { defaults: { token } }),
      });
    const app = consul(secret);
    assert.equal(await app.kv.set("app/x", "1"), true);
    assert.equal((await app.kv.get("app/x") as { Value: string }).Value, "1");
    await assert.rejects(
      app.kv.set("other", "1"),
      refused(
        new RegExp(
          `^Permission denied: token with AccessorID '${accessor}' lacks permission 'key:write' on "other"`,
        ),
      ),
    );
    await assert.rejects(
      app.kv.get("app/secret"),
      refused(/lacks permission 'key:read' on "app\/secret"/),
    );
    // The anonymous token gets --acl-default deny.
    await assert.rejects(
      consul().kv.get("app/x"),
      refused(/AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'key:read'/),
    );
    // Its own token, as Consul shows it (no SecretID).
    const self = await (await fetch(`${a.httpUrl}/v1/acl/token/self`, {
      headers: { "X-Consul-Token": secret },
    })).json();
    assert.equal(self.AccessorID, accessor);
    assert.deepEqual(self.Policies.map((p: { Name: string }) => p.Name), ["app-rw"]);
    assert.equal("SecretID" in self, false);

    r = await berthCli(a, "acl", "token", "delete", "--id", accessor, "--token", mgmt);
    assert.equal(r.code, 0, r.out);
    await assert.rejects(app.kv.get("app/x"), refused(/^ACL not found/));
    assert.ok(!a.log().includes(secret) && !a.log().includes(mgmt));
  } finally {
    await a.stop();
    Deno.removeSync(dir, { recursive: true });
  }
});
