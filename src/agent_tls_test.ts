import assert from "node:assert/strict";
import { freePort } from "../test/harness.ts";
import { makeTestCerts } from "../test/test_certs.ts";
import { Agent } from "./agent.ts";
import { AGENT_FLAGS } from "./agent_flags.ts";
import { redact } from "./api/mod.ts";
import { loadConfig } from "./config.ts";
import { createCa } from "./pki/mod.ts";
import { waitFor } from "../test/wait.ts";

const SENTINEL = "s3cret-SENTINEL-value";

async function agentArgs(dataDir: string, extra: string[]) {
  const http = await freePort("127.0.0.1");
  return {
    http,
    argv: [
      ...["--node", "a", "--data-dir", dataDir, "--bootstrap"],
      ...["--bind", `127.0.0.1:${await freePort("127.0.0.1")}`, "--http", `127.0.0.1:${http}`],
      ...["--dns", `127.0.0.1:${await freePort("127.0.0.1")}`],
      ...["--proxy-http", "off", "--proxy-https", "off", "--docker", "off", ...extra],
    ],
  };
}

Deno.test("Agent with --http-tls-cert/--http-tls-key serves https; agent/self shows no key or token", async () => {
  const certs = await makeTestCerts();
  const dataDir = await Deno.makeTempDir({ prefix: "berth-agent-tls-" });
  const lines: string[] = [];
  // The bootstrap's CA given as files too: its key must not show either.
  const ca = createCa({ clusterId: "c1", now: new Date() });
  await Deno.writeTextFile(`${certs.dir}/cluster-ca.crt`, ca.certPem);
  await Deno.writeTextFile(`${certs.dir}/cluster-ca.key`, ca.keyPem);
  const { http, argv } = await agentArgs(dataDir, [
    ...["--http-tls-cert", certs.crt, "--http-tls-key", certs.key],
    ...["--ca-cert", `${certs.dir}/cluster-ca.crt`, "--ca-key", `${certs.dir}/cluster-ca.key`],
  ]);
  const agent = await Agent.start(loadConfig(argv, { env: {} }), { log: (l) => lines.push(l) });
  const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(certs.caCrt)] });
  try {
    const management = (await Deno.readTextFile(`${dataDir}/management-token`)).trim();
    const init: RequestInit & { client: Deno.HttpClient } = {
      client,
      headers: { "X-Consul-Token": management },
    };
    const r = await fetch(`https://127.0.0.1:${http}/v1/agent/self`, init);
    const text = await r.text();
    assert.equal(r.status, 200);
    const debug = JSON.parse(text).DebugConfig;
    assert.deepEqual(debug.httpTls, { mode: "files", cert: certs.crt, key: "<redacted>" });
    assert.ok(!text.includes(management) && !text.includes("PRIVATE KEY"), text);
    const keyLine = ca.keyPem.split("\n")[1]!;
    assert.ok(!text.includes(keyLine) && !lines.some((l) => l.includes(keyLine)));
    assert.equal(agent.store.pki.ca()?.certPem, ca.certPem, "the given CA is the cluster's");
    assert.ok(!lines.some((l) => l.includes(management)), lines.join("\n"));
    assert.ok(lines.some((l) => l.includes(`api https://127.0.0.1:${http}`)), lines.join("\n"));
  } finally {
    client.close();
    await agent.stop();
    await Deno.remove(dataDir, { recursive: true });
    await certs.remove();
  }
});

Deno.test("Agent.start() with a key not matching --http-tls-cert fails in one line, before locking", async () => {
  const certs = await makeTestCerts();
  const dataDir = await Deno.makeTempDir({ prefix: "berth-agent-tls-" });
  try {
    const { argv } = await agentArgs(dataDir, [
      ...["--http-tls-cert", certs.crt, "--http-tls-key", certs.otherKey],
    ]);
    await assert.rejects(Agent.start(loadConfig(argv, { env: {} })), {
      message: `--http-tls-key ${certs.otherKey}: the key does not belong to the certificate ` +
        `in --http-tls-cert ${certs.crt}`,
    });
    assert.deepEqual([...Deno.readDirSync(dataDir)], []);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
    await certs.remove();
  }
});

Deno.test("redact() hides the value of every agent flag named like a secret", async (t) => {
  const secretFlags = AGENT_FLAGS.filter((f) => /token|key|secret|passphrase/.test(f.name));
  assert.ok(secretFlags.some((f) => f.name === "http-tls-key"));
  for (const f of secretFlags) {
    const camel = f.name.replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase());
    await t.step(`--${f.name} as ${camel}`, () => {
      const shown = JSON.stringify(redact({ [camel]: SENTINEL, nested: { [camel]: SENTINEL } }));
      assert.ok(!shown.includes(SENTINEL), shown);
    });
  }
  await t.step("a PEM private key under any name", () => {
    const pem = "-----BEGIN PRIVATE KEY-----\nMIG...\n-----END PRIVATE KEY-----\n";
    assert.deepEqual(redact({ anything: pem, list: [pem] }), {
      anything: "<redacted>",
      list: ["<redacted>"],
    });
  });
  await t.step("other values and empty secrets are shown as they are", () => {
    assert.deepEqual(redact({ node: "a", token: null, port: 1, keys: [1] }), {
      node: "a",
      token: null,
      port: 1,
      keys: [1],
    });
  });
});

Deno.test("Agent with --http-tls auto serves https only once the cluster CA is in the store", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-agent-tls-" });
  const lines: string[] = [];
  const { http, argv } = await agentArgs(dataDir, ["--http-tls", "auto"]);
  const config = loadConfig(argv, { env: {} });
  const agent = await Agent.start(config, { log: (l) => lines.push(l) });
  try {
    const ca = createCa({ clusterId: "c1", now: new Date() });
    // A bootstrap that made the CA already serves at once; otherwise the API waits for it.
    if (agent.store.pki.ca() === undefined) {
      assert.ok(lines.some((l) => l.includes("waiting for the cluster CA")), lines.join("\n"));
      await assert.rejects(fetch(`http://127.0.0.1:${http}/v1/status/leader`));
      await agent.cluster.propose({ type: "pki.init", caCert: ca.certPem, caKey: ca.keyPem });
    }
    const caPem = agent.store.pki.ca()!.certPem;
    const client = Deno.createHttpClient({ caCerts: [caPem] });
    try {
      const init: RequestInit & { client: Deno.HttpClient } = { client };
      for (const host of ["127.0.0.1", "localhost"]) {
        const r = await waitFor(`https on ${host}`, async () => {
          try {
            return await fetch(`https://${host}:${http}/v1/status/leader`, init);
          } catch {
            return undefined;
          }
        });
        assert.equal(r.status, 200);
        await r.body?.cancel();
      }
      const self = await (await fetch(`https://127.0.0.1:${http}/v1/agent/self`, init)).text();
      assert.ok(!self.includes("PRIVATE KEY"), self);
    } finally {
      client.close();
    }
  } finally {
    await agent.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});
