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

/** `dig +short` of one name over UDP, or TCP with `tcp`: the answer lines, sorted. */
async function dig(port: number, name: string, type: string, tcp = false): Promise<string[]> {
  const args = ["@127.0.0.1", "-p", String(port), name, type, "+short", "+time=2", "+tries=2"];
  if (tcp) args.push("+tcp");
  const out = await new Deno.Command("dig", { args, stdout: "piped", stderr: "piped" }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l !== "").sort();
}

Deno.test({
  name: "e2e dns: with --dns-workers 2 the worker threads answer dig over UDP and TCP",
  ...e2e,
  async fn() {
    const agent = await startAgent({
      node: uniq("dnsw-"),
      docker: false,
      args: ["--dns-workers", "2"],
    });
    try {
      for (const [id, address] of [["w1", "127.0.0.31"], ["w2", "127.0.0.32"]]) {
        const r = await fetch(`${agent.httpUrl}/v1/agent/service/register`, {
          method: "PUT",
          body: JSON.stringify({ ID: id, Name: "web", Address: address, Port: 80 }),
        });
        assert.equal(r.status, 200, await r.text());
      }
      const both = ["127.0.0.31", "127.0.0.32"];
      await waitFor("web in DNS", async () => {
        const got = await dig(agent.dnsPort, "web.service.berth", "A");
        return got.length === 2 ? got : undefined;
      });
      // Several queries: UDP and TCP land on either worker.
      for (let i = 0; i < 6; i++) {
        assert.deepEqual(await dig(agent.dnsPort, "web.service.berth", "A"), both);
        assert.deepEqual(await dig(agent.dnsPort, "web.service.berth", "A", true), both);
      }
      const srv = await dig(agent.dnsPort, "_web._tcp.service.berth", "SRV", true);
      assert.equal(srv.length, 2, srv.join("\n"));
      // A change reaches the workers' replicas.
      const r = await fetch(`${agent.httpUrl}/v1/agent/service/deregister/w2`, { method: "PUT" });
      assert.equal(r.status, 200, await r.text());
      await waitFor("w2 gone from DNS", async () => {
        const got = await dig(agent.dnsPort, "web.service.berth", "A", true);
        return got.length === 1 ? got : undefined;
      });
      assert.deepEqual(await dig(agent.dnsPort, "web.service.berth", "A"), ["127.0.0.31"]);
    } finally {
      await agent.stop();
    }
  },
});
