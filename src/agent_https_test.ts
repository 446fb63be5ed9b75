import assert from "node:assert/strict";
import http from "node:http";
import type net from "node:net";
import { freePort } from "../test/harness.ts";
import { waitFor } from "../test/wait.ts";
import { Agent } from "./agent.ts";
import { loadConfig } from "./config.ts";
import { testEdgeCert } from "./pki/testing.ts";
import { request, sClient, servedSubject } from "./proxy/_testing.ts";

/** curl through the HTTPS listener for `host`, trusting `caPem`; the body. */
async function curl(port: number, host: string, path: string, caPem: string): Promise<string> {
  const ca = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(ca, caPem);
    const r = await new Deno.Command("curl", {
      args: [
        ...["-sS", "--max-time", "10", "--cacert", ca],
        ...["--resolve", `${host}:${port}:127.0.0.1`, `https://${host}:${port}${path}`],
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    assert.ok(r.success, text.decode(r.stderr));
    return text.decode(r.stdout);
  } finally {
    await Deno.remove(ca);
  }
}

Deno.test("Agent serves a certificate added through /v1/berth/certs on --proxy-https, routes with X-Forwarded-Proto https", async () => {
  const protos: string[] = [];
  const backend = http.createServer((req, res) => {
    protos.push(String(req.headers["x-forwarded-proto"]));
    res.end(`web ${req.url}`);
  });
  await new Promise<void>((r) => backend.listen(0, "127.0.0.1", r));
  const backendPort = (backend.address() as net.AddressInfo).port;
  const dataDir = await Deno.makeTempDir({ prefix: "berth-agent-https-" });
  const [httpPort, plainPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
  const argv = [
    ...["--node", "a", "--data-dir", dataDir, "--bootstrap", "--docker", "off"],
    ...["--bind", `127.0.0.1:${await freePort()}`, "--http", `127.0.0.1:${httpPort}`],
    ...["--dns", `127.0.0.1:${await freePort()}`, "--acl-default", "allow"],
    ...["--proxy-http", `127.0.0.1:${plainPort}`, "--proxy-https", `127.0.0.1:${tlsPort}`],
  ];
  const lines: string[] = [];
  const agent = await Agent.start(loadConfig(argv, { env: {} }), { log: (l) => lines.push(l) });
  const api = `http://127.0.0.1:${httpPort}`;
  const put = async (path: string, body: unknown) => {
    const r = await fetch(`${api}${path}`, { method: "PUT", body: JSON.stringify(body) });
    const text = await r.text();
    assert.equal(r.status, 200, text);
  };
  try {
    await put("/v1/agent/service/register", {
      Name: "web",
      Address: "127.0.0.1",
      Port: backendPort,
      Meta: { "berth.http.host": "web.test", "berth.http.redirect": "https" },
    });
    assert.match(await sClient(tlsPort, ["-servername", "web.test"]), /alert/);
    const cert = testEdgeCert(["web.test"]);
    await put("/v1/berth/certs/web", { certPem: cert.certPem, keyPem: cert.keyPem });
    await waitFor(
      "the certificate served",
      async () => servedSubject(await sClient(tlsPort, ["-servername", "web.test"])) === "web.test",
    );
    await waitFor("the route", async () => {
      try {
        return await curl(tlsPort, "web.test", "/x", cert.caPem) === "web /x";
      } catch {
        return false;
      }
    });
    assert.equal(protos.at(-1), "https");
    const plain = await request(plainPort, "/y?z=1", { host: "web.test" });
    assert.equal(plain.status, 308);
    assert.equal(plain.headers.location, `https://web.test:${tlsPort}/y?z=1`);
    assert.ok(lines.some((l) => l.includes(`https 127.0.0.1:${tlsPort}`)), lines.join("\n"));
  } finally {
    await agent.stop();
    backend.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
