import assert from "node:assert/strict";
import { ApiServer, readTlsFiles } from "../api/mod.ts";
import { LocalCluster } from "../cluster/testing.ts";
import { Store } from "../store/mod.ts";
import { VERSION } from "../version.ts";
import { makeTestCerts, type TestCerts } from "../../test/test_certs.ts";
import { type CliIo, main } from "./mod.ts";

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

/** Runs `fn` against an agent API serving https with the test CA's certificate. */
async function withTlsAgent(fn: (port: number, certs: TestCerts) => Promise<void>) {
  const certs = await makeTestCerts();
  const store = Store.open(":memory:");
  const api = new ApiServer({
    store,
    cluster: new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" }),
    node: "n1",
    advertise: "127.0.0.1",
    version: VERSION,
    aclDefault: "allow",
    listen: { host: "127.0.0.1", port: 0 },
    tls: readTlsFiles(certs.crt, certs.key),
  });
  await api.start();
  try {
    await fn(api.address.port, certs);
  } finally {
    await api.close();
    store.close();
    await certs.remove();
  }
}

Deno.test("main() speaks https to an agent whose certificate BERTH_CACERT trusts", async () => {
  await withTlsAgent(async (port, certs) => {
    for (const host of ["127.0.0.1", "localhost"]) {
      const env = { BERTH_HTTP_ADDR: `https://${host}:${port}`, BERTH_CACERT: certs.caCrt };
      assert.deepEqual(await run(["kv", "put", "a/b", "v1"], env), {
        code: 0,
        out: "Success! Data written to: a/b\n",
        err: "",
      });
      const got = await run(["kv", "get", "a/b"], env);
      assert.equal(got.out, "v1\n");
    }
    const viaFlag = await run(
      ["kv", "get", "a/b", "--http-addr", `https://127.0.0.1:${port}`],
      { BERTH_CACERT: certs.caCrt },
    );
    assert.equal(viaFlag.out, "v1\n");
  });
});

Deno.test("main() says why TLS failed and how to fix it, in one line", async (t) => {
  await withTlsAgent(async (port, certs) => {
    const https = `https://127.0.0.1:${port}`;
    await t.step("no BERTH_CACERT", async () => {
      const r = await run(["kv", "get", "a"], { BERTH_HTTP_ADDR: https });
      assert.equal(r.code, 1);
      assert.equal(
        r.err,
        `berth: cannot reach the agent at ${https} (the agent's TLS certificate is not ` +
          "trusted (signed by an unknown CA); set BERTH_CACERT to the ca.crt in an agent's " +
          "data dir)\n",
      );
    });
    await t.step("BERTH_CACERT of another CA", async () => {
      const r = await run(["kv", "get", "a"], {
        BERTH_HTTP_ADDR: https,
        BERTH_CACERT: certs.otherCaCrt,
      });
      assert.equal(r.code, 1);
      assert.match(r.err, /not trusted \(signed by an unknown CA\)/);
    });
    await t.step("http:// to the https agent", async () => {
      const r = await run(["kv", "get", "a"], { BERTH_HTTP_ADDR: `http://127.0.0.1:${port}` });
      assert.equal(r.code, 1);
      assert.equal(
        r.err,
        `berth: cannot reach the agent at http://127.0.0.1:${port} (the agent did not answer ` +
          "in plain HTTP; use an https:// address)\n",
      );
    });
    await t.step("BERTH_CACERT names a missing file or a key", async () => {
      const env = { BERTH_HTTP_ADDR: https, BERTH_CACERT: `${certs.dir}/none.crt` };
      assert.deepEqual(await run(["kv", "get", "a"], env), {
        code: 2,
        out: "",
        err: `berth kv get: BERTH_CACERT ${certs.dir}/none.crt: cannot read (no such file)\n`,
      });
      const key = await run(["kv", "get", "a"], { ...env, BERTH_CACERT: certs.key });
      assert.equal(key.code, 2);
      assert.match(key.err, /^berth kv get: BERTH_CACERT .*: not a PEM certificate/);
    });
  });
});

Deno.test("main() says when an https address reaches a plain http agent", async () => {
  const store = Store.open(":memory:");
  const api = new ApiServer({
    store,
    cluster: new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" }),
    node: "n1",
    advertise: "127.0.0.1",
    version: VERSION,
    aclDefault: "allow",
    listen: { host: "127.0.0.1", port: 0 },
  });
  await api.start();
  try {
    const addr = `https://127.0.0.1:${api.address.port}`;
    const r = await run(["services"], { BERTH_HTTP_ADDR: addr });
    assert.equal(r.code, 1);
    assert.equal(
      r.err,
      `berth: cannot reach the agent at ${addr} (the agent did not answer in TLS; use an ` +
        "http:// address)\n",
    );
  } finally {
    await api.close();
    store.close();
  }
});

Deno.test("main() snapshot restore speaks https too (its upload is not fetch): trusted with BERTH_CACERT, one-line reasons otherwise", async () => {
  await withTlsAgent(async (port, certs) => {
    const https = `https://127.0.0.1:${port}`;
    const file = `${certs.dir}/junk.snap`;
    await Deno.writeTextFile(file, "not a snapshot");
    const restore = (env: Record<string, string>) =>
      run(["snapshot", "restore", file], { BERTH_TOKEN: "none", ...env });
    // Reached through TLS: the agent's own answer (the token may not restore).
    for (const host of ["127.0.0.1", "localhost"]) {
      const r = await restore({
        BERTH_HTTP_ADDR: `https://${host}:${port}`,
        BERTH_CACERT: certs.caCrt,
      });
      assert.equal(r.code, 1);
      assert.match(r.err, /^berth snapshot restore: the agent answered 403: .*\n$/);
    }
    const trust = `berth: cannot reach the agent at ${https} (the agent's TLS certificate is not ` +
      "trusted (signed by an unknown CA); set BERTH_CACERT to the ca.crt in an agent's data dir)\n";
    assert.equal((await restore({ BERTH_HTTP_ADDR: https })).err, trust);
    assert.equal(
      (await restore({ BERTH_HTTP_ADDR: https, BERTH_CACERT: certs.otherCaCrt })).err,
      trust,
    );
    assert.equal(
      (await restore({ BERTH_HTTP_ADDR: `http://127.0.0.1:${port}` })).err,
      `berth: cannot reach the agent at http://127.0.0.1:${port} (the agent did not answer ` +
        "in plain HTTP; use an https:// address)\n",
    );
  });
});
