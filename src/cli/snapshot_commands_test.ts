import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ApiServer } from "../api/mod.ts";
import { addToken } from "../api/_testing.ts";
import { LocalCluster } from "../cluster/testing.ts";
import { Store } from "../store/mod.ts";
import { VERSION } from "../version.ts";
import { type CliIo, main } from "./mod.ts";

const T1 = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";

async function run(argv: string[], env: Record<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: (c) => out.push(typeof c === "string" ? c : new TextDecoder().decode(c)),
    stderr: (t) => err.push(t),
    env,
  };
  const code = await main(argv, io);
  return { code, out: out.join(""), err: err.join("") };
}

async function withAgent(
  fn: (env: Record<string, string>, store: Store, dir: string) => Promise<void>,
) {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" });
  await cluster.propose({ type: "kv.put", key: "k", value: new Uint8Array([1]), flags: 0 });
  await cluster.propose({
    type: "acl.token.set",
    token: {
      accessorId: T1,
      secretHash: createHash("sha256").update("s1").digest("hex"),
      description: "d",
      policies: [],
      local: false,
      createTimeMs: 1,
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
  // Snapshots need acl:write: the management token's.
  addToken(store, "mgmt", "management");
  await api.start();
  const dir = await Deno.makeTempDir({ prefix: "berth-snap-cli-" });
  try {
    const env = { BERTH_HTTP_ADDR: `http://127.0.0.1:${api.address.port}`, BERTH_TOKEN: "mgmt" };
    await fn(env, store, dir);
  } finally {
    await api.close();
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("berth snapshot save writes 0600 files; --include-secrets seals; restore takes the passphrase", async () => {
  await withAgent(async (env, store, dir) => {
    const pass = `${dir}/pass`;
    await Deno.writeTextFile(pass, "correct horse\n");
    const plain = await run(["snapshot", "save", `${dir}/plain.snap`], env);
    assert.equal(plain.code, 0, plain.err);
    const sealed = await run(
      ["snapshot", "save", `${dir}/sealed.snap`, "--include-secrets", "--passphrase-file", pass],
      env,
    );
    assert.equal(sealed.code, 0, sealed.err);
    assert.match(sealed.out, /secrets sealed with the passphrase\n$/);
    for (const f of ["plain.snap", "sealed.snap"]) {
      assert.equal((await Deno.stat(`${dir}/${f}`)).mode! & 0o777, 0o600, f);
    }
    await store.apply(store.appliedIndex() + 1, { type: "acl.token.delete", accessorId: T1 });
    assert.equal(store.aclToken(T1), undefined);

    const kept = await run(["snapshot", "restore", `${dir}/sealed.snap`], env);
    assert.equal(kept.code, 0, kept.err);
    assert.match(kept.out, /its sealed secrets were not restored \(no passphrase\)/);
    assert.equal(store.aclToken(T1), undefined);

    const wrong = await run(["snapshot", "restore", `${dir}/sealed.snap`], {
      ...env,
      BERTH_SNAPSHOT_PASSPHRASE: "wrong",
    });
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /wrong passphrase or damaged data; nothing restored\n$/);

    const ok = await run(["snapshot", "restore", `${dir}/sealed.snap`], {
      ...env,
      BERTH_SNAPSHOT_PASSPHRASE: "correct horse",
    });
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /with its ACL policies and tokens and HTTPS certificates\n$/);
    assert.ok(store.aclToken(T1) !== undefined);
  });
});

Deno.test("berth snapshot save refuses --include-secrets without a passphrase, in one line", async () => {
  await withAgent(async (env, _store, dir) => {
    const r = await run(["snapshot", "save", `${dir}/x`, "--include-secrets"], env);
    assert.deepEqual(r, {
      code: 2,
      out: "",
      err: "berth snapshot save: --include-secrets needs a passphrase: --passphrase-file FILE " +
        "or BERTH_SNAPSHOT_PASSPHRASE\n",
    });
    const missing = await run(
      ["snapshot", "save", `${dir}/x`, "--include-secrets", "--passphrase-file", `${dir}/none`],
      env,
    );
    assert.equal(missing.code, 2);
    assert.match(missing.err, /^berth snapshot save: --passphrase-file .*\/none: cannot read/);
    await assert.rejects(Deno.stat(`${dir}/x`), Deno.errors.NotFound);
  });
});
