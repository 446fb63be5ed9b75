/**
 * End to end, DNS as Consul answers it: a real `berth agent` with `--domain consul.`, a
 * datacenter and per-service TTLs, asked over UDP the names Consul clients ask.
 */
import assert from "node:assert/strict";
import { dnsQuery, startAgent, uniq } from "./harness.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name:
    "e2e dns: with --domain consul. the agent answers datacenter-qualified names, several tags, PTR, node meta TXT and per-service TTLs",
  ...e2e,
  async fn() {
    const node = uniq("dns-");
    const agent = await startAgent({
      node,
      docker: false,
      args: [
        "--domain",
        "consul.",
        "--datacenter",
        "eu1",
        "--dns-ttl",
        "1",
        "--dns-service-ttl",
        "web=30s",
        "--dns-service-ttl",
        "*=5s",
      ],
    });
    try {
      for (
        const [id, name, address, tags] of [
          ["web1", "web", "127.0.0.21", ["v1", "blue"]],
          ["web2", "web", "127.0.0.22", ["v1"]],
          ["db1", "db", "127.0.0.23", []],
        ] as const
      ) {
        const r = await fetch(`${agent.httpUrl}/v1/agent/service/register`, {
          method: "PUT",
          body: JSON.stringify({ ID: id, Name: name, Address: address, Port: 80, Tags: tags }),
        });
        assert.equal(r.status, 200, await r.text());
      }
      const q = (name: string, type = "A") => dnsQuery(agent.dnsPort, name, type);
      const a = await waitFor("web in DNS", async () => {
        const r = await q("web.service.eu1.consul");
        return r.answers.length === 2 ? r : undefined;
      });
      assert.deepEqual(a.answers.map((x) => x.data).sort(), ["127.0.0.21", "127.0.0.22"]);
      assert.ok(a.answers.every((x) => x.ttl === 30));
      assert.deepEqual((await q("blue.v1.web.service.consul")).answers.map((x) => x.data), [
        "127.0.0.21",
      ]);
      const srv = await q("_web._tcp.service.eu1.consul", "SRV");
      assert.equal(srv.answers.length, 2);
      const db = await waitFor("db in DNS", async () => {
        const r = await q("db.service.consul");
        return r.answers.length === 1 ? r : undefined;
      });
      assert.equal(db.answers[0]!.ttl, 5);
      assert.equal((await q("web.service.dc1.consul")).rcode, "NXDOMAIN");

      const n = await q(`${node}.node.eu1.consul`);
      assert.deepEqual(n.answers.map((x) => [x.data, x.ttl]), [["127.0.0.1", 1]]);
      const txt = await q(`${node}.node.eu1.consul`, "TXT");
      assert.ok(
        txt.answers.some((x) => x.data.map(String).join("") === "proxy=true"),
        JSON.stringify(txt.answers),
      );
      assert.deepEqual(
        (await q("1.0.0.127.in-addr.arpa", "PTR")).answers.map((x) => x.data),
        [`${node.toLowerCase()}.node.eu1.consul`],
      );
      assert.deepEqual(
        (await q("22.0.0.127.in-addr.arpa", "PTR")).answers.map((x) => x.data),
        ["web.service.eu1.consul"],
      );
      // An address berth does not know goes to the recursors: none here, so REFUSED.
      assert.equal((await q("8.8.8.8.in-addr.arpa", "PTR")).rcode, "REFUSED");
    } finally {
      await agent.stop();
    }
  },
});
