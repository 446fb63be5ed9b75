import assert from "node:assert/strict";
import { anonymousNames } from "./agent_dns_acl.ts";
import { hashSecret } from "./acl/mod.ts";
import { DnsServer } from "./dns/mod.ts";
import { ANONYMOUS_ACCESSOR, type Command, Store } from "./store/mod.ts";
import { apiInstanceSpec } from "../test/fixtures.ts";
import { dnsQuery } from "../test/dns_query.ts";

const POLICY = "11111111-1111-4111-8111-111111111111";

/** Nodes n1 and n2; web on both, db on n2; the anonymous token linked to a policy of `rules`. */
function store(rules: string): { store: Store; apply: (c: Command) => void } {
  const s = Store.open(":memory:");
  const apply = (c: Command) => {
    const r = s.apply(s.appliedIndex() + 1, c);
    if (!r.ok) throw new Error(`apply: ${r.error}`);
  };
  for (const [name, address] of [["n1", "10.0.0.1"], ["n2", "10.0.0.2"]]) {
    apply({ type: "node.register", name: name!, address: address!, meta: {} });
  }
  for (
    const [id, service, node, address] of [
      ["web-1", "web", "n1", "10.0.1.1"],
      ["web-2", "web", "n2", "10.0.1.2"],
      ["db-1", "db", "n2", "10.0.1.3"],
    ] as const
  ) {
    apply({ type: "register", instance: apiInstanceSpec({ id, service, node, address }) });
  }
  apply({
    type: "acl.policy.set",
    policy: { id: POLICY, name: "dns", description: "", rules, datacenters: [] },
  });
  apply({
    type: "acl.token.set",
    token: {
      accessorId: ANONYMOUS_ACCESSOR,
      description: "anonymous",
      policies: [{ id: POLICY }],
      local: false,
      createTimeMs: 0,
    },
  });
  return { store: s, apply };
}

async function dns(s: Store, dnsAcl: boolean): Promise<DnsServer> {
  const server = new DnsServer({
    store: s,
    listen: { host: "127.0.0.1", port: 0 },
    domain: "berth.",
    edgeDomain: null,
    ttl: 0,
    recursors: [],
    visible: dnsAcl ? () => anonymousNames(s, "deny") : undefined,
  });
  await server.start();
  return server;
}

const addresses = (r: { answers: { data?: unknown }[] }) =>
  r.answers.map((a) => String(a.data)).sort();

Deno.test("--dns-acl: DNS names only the services and nodes the anonymous token may read", async () => {
  const { store: s } = store(`service "web" { policy = "read" }\nnode "n1" { policy = "read" }`);
  const open = await dns(s, false);
  const acl = await dns(s, true);
  try {
    const port = acl.address.udp.port;
    for (const tcp of [false, true]) {
      // web-2 is on n2, which the anonymous token may not read.
      assert.deepEqual(addresses(await dnsQuery(port, "web.service.berth", "A", { tcp })), [
        "10.0.1.1",
      ]);
      const srv = await dnsQuery(port, "web.service.berth", "SRV", { tcp });
      assert.equal(srv.answers.length, 1);
      assert.equal((await dnsQuery(port, "db.service.berth", "A", { tcp })).rcode, "NXDOMAIN");
      assert.deepEqual(addresses(await dnsQuery(port, "n1.node.berth", "A", { tcp })), [
        "10.0.0.1",
      ]);
      assert.equal((await dnsQuery(port, "n2.node.berth", "A", { tcp })).rcode, "NXDOMAIN");
    }
    // A PTR of n2's address is not answered from the zone (no recursors here: REFUSED).
    assert.notEqual((await dnsQuery(port, "2.0.0.10.in-addr.arpa", "PTR")).rcode, "NOERROR");
    // NS names only nodes the token may read.
    const ns = await dnsQuery(port, "berth", "NS");
    assert.deepEqual(ns.answers.map((a) => a.data), ["n1.node.berth"]);
    // The default stays open: every name.
    const p = open.address.udp.port;
    assert.deepEqual(addresses(await dnsQuery(p, "web.service.berth", "A")), [
      "10.0.1.1",
      "10.0.1.2",
    ]);
    assert.deepEqual(addresses(await dnsQuery(p, "db.service.berth", "A")), ["10.0.1.3"]);
    assert.deepEqual(
      (await dnsQuery(p, "2.0.0.10.in-addr.arpa", "PTR")).answers.map((a) => a.data),
      ["n2.node.dc1.berth"],
    );
  } finally {
    await acl.close();
    await open.close();
    s.close();
  }
});

Deno.test("--dns-acl: a change of the anonymous token's policy changes the names at once", async () => {
  const { store: s, apply } = store(`service "web" { policy = "read" }`);
  const acl = await dns(s, true);
  try {
    const port = acl.address.udp.port;
    assert.equal((await dnsQuery(port, "web.service.berth", "A")).rcode, "NXDOMAIN");
    apply({
      type: "acl.policy.set",
      policy: {
        id: POLICY,
        name: "dns",
        description: "",
        rules: `service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }`,
        datacenters: [],
      },
    });
    assert.deepEqual(addresses(await dnsQuery(port, "web.service.berth", "A")), [
      "10.0.1.1",
      "10.0.1.2",
    ]);
    assert.deepEqual(addresses(await dnsQuery(port, "db.service.berth", "A")), ["10.0.1.3"]);
  } finally {
    await acl.close();
    s.close();
  }
});

Deno.test("--dns-acl: an ACL write that leaves the anonymous token's rights alone keeps the zone (no rebuild)", async () => {
  const { store: s, apply } = store(`service "web" { policy = "read" }`);
  const acl = await dns(s, true);
  try {
    const zone = acl.view.zone;
    apply({
      type: "acl.policy.set",
      policy: {
        id: "22222222-2222-4222-8222-222222222222",
        name: "ci",
        description: "",
        rules: `service_prefix "" { policy = "write" }`,
        datacenters: [],
      },
    });
    apply({
      type: "acl.token.set",
      token: {
        accessorId: "33333333-3333-4333-8333-333333333333",
        secretHash: hashSecret("ci-secret"),
        description: "ci",
        policies: [{ name: "ci" }],
        local: false,
        createTimeMs: 0,
      },
    });
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(acl.view.zone, zone);
    assert.equal(acl.view.rebuilding, false);
    assert.equal(zone.version, s.appliedIndex());
  } finally {
    await acl.close();
    s.close();
  }
});
