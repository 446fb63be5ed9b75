import assert from "node:assert/strict";
import { checkOnNode, instanceHealth } from "../store/mod.ts";
import { HealthChecker } from "./checker.ts";
import { closedUdpPort, instance, oneNodeCluster, udpServer } from "./_testing.ts";
import { waitFor } from "../../test/wait.ts";
import { registeredCheck } from "../../test/fixtures.ts";

const NODE = "n1";

async function setup() {
  const { store, cluster, proposed, propose } = await oneNodeCluster(NODE);
  const checker = new HealthChecker({ store, propose, node: NODE, log: () => {} });
  const served = (id: string) => instanceHealth(store.instance(id)!, store.node(NODE)).served;
  const close = async () => {
    await checker.close();
    await cluster.close();
    store.close();
  };
  return { store, cluster, proposed, checker, served, close };
}

Deno.test("HealthChecker runs an instance's udp check: an answering instance is served, a closed port takes it out", async () => {
  const s = await udpServer((t) => t === "PING" ? "PONG" : null);
  const t = await setup();
  try {
    const check = { udp: "PING", udpExpect: "PONG", intervalMs: 100, timeoutMs: 60_000 };
    await t.cluster.propose({ type: "register", instance: instance("dns-1", NODE, s.port, check) });
    t.checker.start();
    await waitFor("passing", () => t.store.instance("dns-1")?.checkResult?.status === "passing");
    assert.equal(t.store.instance("dns-1")!.checkResult!.output, `UDP 127.0.0.1:${s.port}: reply`);
    assert.equal(t.served("dns-1"), true);
    await s.close();
    // The timeout is a minute: only the ICMP refusals can turn it critical within waitFor's time.
    await waitFor("critical", () => t.store.instance("dns-1")?.checkResult?.status === "critical");
    assert.equal(
      t.store.instance("dns-1")!.checkResult!.output,
      `UDP 127.0.0.1:${s.port}: port unreachable (ICMP)`,
    );
    assert.equal(t.served("dns-1"), false);
  } finally {
    await t.close();
  }
});

Deno.test("HealthChecker runs a registered UDP check (Consul's: an empty datagram to host:port)", async () => {
  const port = await closedUdpPort();
  const s = await udpServer(() => null);
  const t = await setup();
  try {
    const udp = (id: string, p: number) =>
      registeredCheck(id, {
        kind: "udp",
        target: `127.0.0.1:${p}`,
        ttlMs: 0,
        intervalMs: 100,
        timeoutMs: 100,
      });
    await t.cluster.propose({
      type: "register",
      instance: { ...instance("svc-1", NODE, 1, null), checks: [udp("quiet", s.port)] },
    });
    await t.cluster.propose({
      type: "register",
      instance: { ...instance("svc-2", NODE, 1, null), checks: [udp("closed", port)] },
    });
    t.checker.start();
    await waitFor("quiet passing", () => checkOnNode(t.store, NODE, "quiet")?.status === "passing");
    assert.equal(
      checkOnNode(t.store, NODE, "quiet")!.output,
      `UDP 127.0.0.1:${s.port}: no reply within 100ms, no refusal`,
    );
    assert.equal(s.got[0], "");
    await waitFor(
      "closed critical",
      () => checkOnNode(t.store, NODE, "closed")?.output.endsWith("port unreachable (ICMP)"),
    );
    assert.equal(checkOnNode(t.store, NODE, "closed")!.status, "critical");
    assert.equal(t.served("svc-1"), true);
    assert.equal(t.served("svc-2"), false);
  } finally {
    await t.close();
    await s.close();
  }
});

Deno.test("HealthChecker fails a check that fails closed (a bad berth.check.udp.expect): critical with its reason, nothing sent, not served", async () => {
  const s = await udpServer(() => null); // silence, which a UDP check without expect passes
  const t = await setup();
  try {
    const check = { udp: "PING", failClosed: "bad label", intervalMs: 100, timeoutMs: 100 };
    await t.cluster.propose({ type: "register", instance: instance("dns-1", NODE, s.port, check) });
    t.checker.start();
    await waitFor("a result", () => t.store.instance("dns-1")?.checkResult != null);
    assert.deepEqual(t.store.instance("dns-1")!.checkResult, {
      status: "critical",
      output: `UDP 127.0.0.1:${s.port}: bad label`,
    });
    assert.equal(t.served("dns-1"), false);
    assert.deepEqual(s.got, []);
  } finally {
    await t.close();
    await s.close();
  }
});
