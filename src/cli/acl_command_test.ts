import assert from "node:assert/strict";
import { hashSecret } from "../acl/mod.ts";
import { ApiServer } from "../api/mod.ts";
import { LocalCluster } from "../cluster/testing.ts";
import { GLOBAL_MANAGEMENT_ID, Store } from "../store/mod.ts";
import { VERSION } from "../version.ts";
import { main } from "./mod.ts";

const MGMT = "0f0f0f0f-0000-4000-8000-000000000001";

/** Runs `berth ARGV` against an agent holding a management token; returns code, out, err. */
function runner(env: Record<string, string>) {
  return async (argv: string[], extraEnv: Record<string, string> = {}) => {
    let out = "";
    let err = "";
    const dec = new TextDecoder();
    const code = await main(argv, {
      stdout: (c) => void (out += typeof c === "string" ? c : dec.decode(c)),
      stderr: (t) => void (err += t),
      env: { ...env, ...extraEnv },
    });
    return { code, out, err };
  };
}

async function withAgent(fn: (run: ReturnType<typeof runner>, store: Store) => Promise<void>) {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" });
  await cluster.propose({
    type: "acl.token.set",
    token: {
      accessorId: "0f0f0f0f-0000-4000-8000-0000000000aa",
      secretHash: hashSecret(MGMT),
      description: "bootstrap",
      policies: [{ id: GLOBAL_MANAGEMENT_ID }],
      local: false,
      createTimeMs: 0,
    },
  });
  const api = new ApiServer({
    store,
    cluster,
    node: "n1",
    advertise: "127.0.0.1",
    version: VERSION,
    aclDefault: "deny",
    listen: { host: "127.0.0.1", port: 0 },
  });
  await api.start();
  try {
    await fn(
      runner({ BERTH_HTTP_ADDR: `http://127.0.0.1:${api.address.port}`, BERTH_TOKEN: MGMT }),
      store,
    );
  } finally {
    await api.close();
    store.close();
  }
}

Deno.test("berth acl policy create|list|delete and acl token create|update|list|delete round trip", async () => {
  await withAgent(async (run, store) => {
    const dir = Deno.makeTempDirSync({ prefix: "berth-acl-cli-" });
    try {
      Deno.writeTextFileSync(`${dir}/app.hcl`, `key_prefix "app/" { policy = "read" }\n`);
      let r = await run([
        "acl",
        "policy",
        "create",
        "--name",
        "app-read",
        "--rules",
        `@${dir}/app.hcl`,
        "--description",
        "reads app/",
      ]);
      assert.equal(r.code, 0, r.err);
      const id = store.aclPolicyByName("app-read")!.id;
      assert.equal(
        r.out,
        `ID:           ${id}\nName:         app-read\nDescription:  reads app/\nDatacenters:  \n` +
          `Rules:\nkey_prefix "app/" { policy = "read" }\n\n`,
      );
      r = await run(["acl", "policy", "create", "--name", "ops", "--rules", `operator = "read"`]);
      assert.equal(r.code, 0, r.err);
      r = await run(["acl", "policy", "list"]);
      assert.match(r.out, /^ID +Name +Description\n/);
      assert.match(r.out, new RegExp(`^${id}  app-read +reads app/$`, "m"));
      assert.match(r.out, /global-management/);

      r = await run([
        "acl",
        "token",
        "create",
        "--policy-name",
        "app-read",
        "--policy-name",
        "ops",
        "--description",
        "ci",
      ]);
      assert.equal(r.code, 0, r.err);
      const accessor = /^AccessorID: +(\S+)$/m.exec(r.out)![1]!;
      const secret = /^SecretID: +(\S+)$/m.exec(r.out)![1]!;
      assert.equal(store.aclTokenByHash(hashSecret(secret))?.token.accessorId, accessor);
      assert.match(r.out, new RegExp(`^   ${id} - app-read$`, "m"));
      assert.match(r.out, /^ {3}\S+ - ops$/m);
      r = await run(["acl", "token", "list"]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, new RegExp(`^${accessor}  ci +app-read,ops +false`, "m"));
      assert.ok(!r.out.includes(secret), "list never shows a secret");
      r = await run(["acl", "token", "list", "--json"]);
      assert.equal(JSON.parse(r.out).length, 3); // anonymous, bootstrap, ci

      // update: new policies replace the old; a description alone keeps them.
      r = await run(["acl", "token", "update", "--id", accessor, "--policy-name", "ops"]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^Policies:\n {3}\S+ - ops\n$/m);
      assert.ok(!r.out.includes("SecretID"));
      r = await run(["acl", "token", "update", "--id", accessor, "--description", "ci2"]);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(
        store.aclToken(accessor)!.policyIds,
        [store.aclPolicyByName("ops")!.id],
      );
      assert.equal(store.aclToken(accessor)!.description, "ci2");
      assert.equal(store.aclTokenByHash(hashSecret(secret))?.token.accessorId, accessor);
      // The anonymous token gets policies the same way (what --dns-acl and token-less reads use).
      r = await run([
        "acl",
        "token",
        "update",
        "--id",
        "00000000-0000-0000-0000-000000000002",
        "--policy-name",
        "app-read",
      ]);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(
        store.aclToken("00000000-0000-0000-0000-000000000002")!.policyIds,
        [id],
      );

      r = await run(["acl", "token", "delete", "--id", accessor]);
      assert.deepEqual([r.code, r.out], [0, `Token "${accessor}" deleted successfully\n`]);
      assert.equal(store.aclToken(accessor), undefined);
      r = await run(["acl", "policy", "delete", "--name", "app-read"]);
      assert.deepEqual([r.code, r.out], [0, `Policy "app-read" deleted successfully\n`]);
      r = await run(["acl", "policy", "delete", "--id", store.aclPolicyByName("ops")!.id]);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(store.aclPolicies().map((p) => p.name), ["global-management"]);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
});

Deno.test("berth acl commands name what is wrong in one line", async () => {
  await withAgent(async (run) => {
    const cases: [string[], number, RegExp][] = [
      [["acl", "policy", "create", "--name", "x"], 2, /--name and --rules are required/],
      [
        ["acl", "policy", "create", "--name", "x", "--rules", "@/nonexistent/r.hcl"],
        1,
        /cannot read rules @\/nonexistent\/r\.hcl/,
      ],
      [
        ["acl", "policy", "create", "--name", "x", "--rules", `key "a" {`],
        1,
        /the agent answered 400: .*line 1, column 10/,
      ],
      [["acl", "policy", "delete"], 2, /give one of --id or --name/],
      [["acl", "policy", "delete", "--name", "nope"], 1, /404: ACL not found/],
      [["acl", "token", "create", "--policy-name", "nope"], 1, /400: .*no policy nope/],
      [["acl", "token", "delete"], 2, /--id ACCESSOR is required/],
      [["acl", "token", "update"], 2, /--id ACCESSOR is required/],
      [
        ["acl", "token", "update", "--id", "11111111-2222-4333-8444-555555555555"],
        1,
        /404: ACL not found/,
      ],
      [["acl", "token", "delete", "--id", "x"], 1, /400: .*expected a UUID/],
      [["acl", "role", "list"], 2, /berth acl: unknown subcommand "role"/],
      [["acl", "token"], 2, /Usage: berth acl token SUBCOMMAND/],
    ];
    for (const [argv, code, want] of cases) {
      const r = await run(argv);
      assert.equal(r.code, code, `${argv.join(" ")}: ${r.err}`);
      assert.match(r.err, want, argv.join(" "));
    }
    const help = await run(["acl", "--help"]);
    assert.match(help.out, /berth acl token create/);
    assert.match(help.out, /berth acl policy delete/);
  });
});
