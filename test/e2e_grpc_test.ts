/**
 * End to end: gRPC through a real agent. A gRPC server on the host (`@grpc/grpc-js`) is
 * registered through the API as a `berth.http.proto=grpc` service with a Consul `GRPC` check;
 * its certificate is added with `berth cert add`; a gRPC client reaches it through the agent's
 * HTTPS listener (HTTP/2 by ALPN with --proxy-h2, SNI), unary and bidirectional; when the
 * server stops, the check fails and calls get UNAVAILABLE from the proxy itself.
 *
 * Run under the e2e lock: `flock /tmp/berth-e2e.lock deno test -A test/e2e_grpc_test.ts`.
 */
import assert from "node:assert/strict";
import { type AgentProc, apiJson, berthCli, startAgent } from "./harness.ts";
import { makeEdgeCerts } from "./edge_certs.ts";
import { echoClient, startGrpcServer } from "./grpc_echo.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };
const NAME = "rpc.example.com";

async function checkStatus(a: AgentProc, id: string): Promise<string | undefined> {
  const checks = await apiJson(a, "/v1/agent/checks") as Record<string, { Status: string }>;
  return checks[id]?.Status;
}

Deno.test(
  "e2e gRPC: a grpc service through the HTTPS listener, its GRPC check, 14 once it is down",
  e2e,
  async () => {
    const certs = await makeEdgeCerts({ rpc: [NAME] });
    const server = await startGrpcServer("s1");
    let a: AgentProc | null = null;
    try {
      a = await startAgent({ docker: false, args: ["--proxy-h2"] });
      const leaf = certs.leaf("rpc");
      const add = await berthCli(a, "cert", "add", "--name", "rpc", leaf.crt, leaf.key);
      assert.equal(add.code, 0, add.out);
      const reg = await fetch(`${a.httpUrl}/v1/agent/service/register`, {
        method: "PUT",
        body: JSON.stringify({
          Name: "rpc",
          Address: "127.0.0.1",
          Port: server.port,
          Meta: { "berth.http.proto": "grpc", "berth.http.host": NAME },
          Check: { CheckID: "rpc-health", GRPC: `127.0.0.1:${server.port}`, Interval: "1s" },
        }),
      });
      assert.equal(reg.status, 200, await reg.text());
      const agent = a;
      await waitFor("the GRPC check passing", async () => {
        return await checkStatus(agent, "rpc-health") === "passing";
      }, { timeoutMs: 15_000 });

      const client = echoClient(`127.0.0.1:${a.httpsPort}`, {
        authority: NAME,
        rootCertPem: await Deno.readTextFile(certs.caCrt),
      });
      try {
        await waitFor("the route and certificate in place", async () => {
          return (await client.echo("ping")).value === "s1:ping";
        }, { timeoutMs: 10_000 });
        const ok = await client.echo("hi");
        assert.equal(ok.value, "s1:hi");
        assert.deepEqual(ok.trailers!.get("x-trailer"), ["s1"]);
        const chat = await client.chat(["a", "b", "c"]);
        assert.deepEqual(chat.got, ["s1:a", "s1:b", "s1:c"]);
        const failed = await client.echo("fail");
        assert.equal(failed.error?.code, 5);

        server.close();
        await waitFor("the GRPC check failing", async () => {
          return await checkStatus(agent, "rpc-health") === "critical";
        }, { timeoutMs: 15_000 });
        const down = await client.echo("hi");
        assert.equal(down.error?.code, 14);
        assert.equal(down.error?.details, "no healthy instance of service rpc");
      } finally {
        client.close();
      }
    } finally {
      server.close();
      await a?.stop();
      await certs.remove();
    }
  },
);
