/**
 * End to end: a real agent serving its API over TLS (`--http-tls-cert/--http-tls-key` with
 * openssl-made files, and `--http-tls auto` from the cluster CA), and the real `berth` CLI
 * talking to it over https with BERTH_CACERT. No Docker.
 */
import assert from "node:assert/strict";
import { freePort, PERMISSIONS } from "./harness.ts";
import { makeTestCerts } from "./test_certs.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };
const MAIN = new URL("../src/main.ts", import.meta.url).pathname;

interface Agent {
  http: number;
  dataDir: string;
  stop(): Promise<string>;
}

/** Starts `berth agent --bootstrap` with `extra` flags; stop() resolves with its stderr. */
async function agent(extra: string[]): Promise<Agent> {
  const dataDir = await Deno.makeTempDir({ prefix: "berth-e2e-tls-" });
  const http = await freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", ...PERMISSIONS, MAIN, "agent", "--bootstrap", "--node", "tls1"],
      ...["--data-dir", dataDir, "--docker", "off", "--proxy-http", "off"],
      ...["--proxy-https", "off"],
      ...["--http", `127.0.0.1:${http}`, "--dns", `127.0.0.1:${await freePort()}`],
      ...["--bind", `127.0.0.1:${await freePort()}`, "--acl-default", "allow", ...extra],
    ],
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  return {
    http,
    dataDir,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dataDir, { recursive: true });
      return await stderr;
    },
  };
}

async function berth(env: Record<string, string>, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSIONS, MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
}

/** Waits until `berth members` succeeds with `env`. */
async function ready(env: Record<string, string>): Promise<void> {
  await waitFor("the agent over https", async () => (await berth(env, "members")).code === 0, {
    timeoutMs: 30_000,
    intervalMs: 200,
  });
}

Deno.test(
  "berth CLI works against an agent serving --http-tls-cert/--http-tls-key",
  e2e,
  async () => {
    const certs = await makeTestCerts();
    const a = await agent(["--http-tls-cert", certs.crt, "--http-tls-key", certs.key]);
    let log = "";
    try {
      const env = { BERTH_HTTP_ADDR: `https://127.0.0.1:${a.http}`, BERTH_CACERT: certs.caCrt };
      await ready(env);
      assert.equal((await berth(env, "kv", "put", "tls/k", "v1")).code, 0);
      assert.equal((await berth(env, "kv", "get", "tls/k")).out, "v1\n");
      const members = await berth(env, "members");
      assert.match(members.out, /tls1/);
      const untrusted = await berth({ BERTH_HTTP_ADDR: env.BERTH_HTTP_ADDR }, "kv", "get", "tls/k");
      assert.equal(untrusted.code, 1);
      assert.match(untrusted.err, /TLS certificate is not trusted .*set BERTH_CACERT/);
      const plain = await berth({ BERTH_HTTP_ADDR: `http://127.0.0.1:${a.http}` }, "members");
      assert.equal(plain.code, 1);
      assert.match(plain.err, /use an https:\/\/ address/);
    } finally {
      log = await a.stop();
      await certs.remove();
    }
    assert.match(log, new RegExp(`api https://127\\.0\\.0\\.1:${a.http}`));
  },
);

Deno.test(
  "berth CLI works against --http-tls auto, trusting the CA file of the data dir",
  e2e,
  async () => {
    const a = await agent(["--http-tls", "auto"]);
    try {
      const caFile = `${a.dataDir}/ca.crt`;
      // The bootstrap writes ca.crt once it made the cluster CA.
      await waitFor("ca.crt", () => Deno.stat(caFile).then(() => true, () => false), {
        timeoutMs: 30_000,
      });
      const env = { BERTH_HTTP_ADDR: `https://127.0.0.1:${a.http}`, BERTH_CACERT: caFile };
      await ready(env);
      assert.equal((await berth(env, "kv", "put", "auto/k", "v2")).code, 0);
      const local = { ...env, BERTH_HTTP_ADDR: `https://localhost:${a.http}` };
      assert.equal((await berth(local, "kv", "get", "auto/k")).out, "v2\n");
    } finally {
      await a.stop();
    }
  },
);
