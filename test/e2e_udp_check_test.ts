/**
 * End to end with a real berth process and busybox containers: `berth.check.udp` checks the
 * instances of UDP ports. With `--internal` the check reaches the container's own address, so a
 * port nobody listens on answers ICMP port unreachable and the check fails at once, taking the
 * instance out of the UDP route while its container still runs. Run under
 * `flock /tmp/berth-e2e.lock`.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  docker,
  freePort,
  removeContainers,
  requireDocker,
  startAgent,
  stopAll,
  TEST_IMAGE,
  uniq,
} from "./harness.ts";
import { waitFor } from "./wait.ts";
import { buildUdpEcho, udpClient } from "./udp_echo.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

interface HealthEntry {
  Service: { ID: string };
  Checks: { CheckID: string; Status: string; Output: string }[];
}

Deno.test({
  name:
    "e2e udp check: berth.check.udp passes an answering UDP instance and fails a closed port by its ICMP refusal, out of the UDP route",
  ...e2e,
  async fn() {
    await requireDocker();
    const dir = await buildUdpEcho();
    const svc = uniq("udpc");
    const udpPort = await freePort();
    const names = { up: `berth-e2e-${svc}-up`, mute: `berth-e2e-${svc}-mute` };
    // Timeout a minute: within waitFor's time only an ICMP refusal can fail a check.
    const check = ["-l", "berth.check.interval=1s", "-l", "berth.check.timeout=60s"];
    const agent = await startAgent({ args: ["--internal"] });
    let client: Awaited<ReturnType<typeof udpClient>> | null = null;
    /** The label check of each instance of the service: id suffix → [status, output]. */
    const checks = async () => {
      const r = await fetch(`${agent.httpUrl}/v1/health/service/${svc}`);
      const out: Record<string, [string, string]> = {};
      for (const e of await r.json() as HealthEntry[]) {
        const c = e.Checks.find((c) => c.CheckID === `service:${e.Service.ID}`);
        const who = e.Service.ID.includes(names.up) ? "up" : "mute";
        if (c) out[who] = [c.Status, c.Output];
      }
      return out;
    };
    try {
      const common = [
        ...["-d", "-l", "berth-e2e=1", "-e", `SERVICE_NAME=${svc}`, "--expose", "9000/udp"],
        ...["-l", `berth.udp.port=${udpPort}`, "-l", "berth.port=9000/udp"],
        ...["-v", `${dir}/udp_echo:/udp_echo:ro`],
        ...check,
      ];
      // "up" answers PING with "up:PING"; "mute" runs, but nothing listens on its UDP port.
      await docker(
        "run",
        "--name",
        names.up,
        ...common,
        ...["-l", "berth.check.udp=PING", "-l", "berth.check.udp.expect=up:PING"],
        ...[TEST_IMAGE, "sh", "-c", "/udp_echo up & exec sleep 3600"],
      );
      await docker(
        "run",
        "--name",
        names.mute,
        ...common,
        ...["-l", "berth.check.udp=true"],
        ...[TEST_IMAGE, "sleep", "3600"],
      );
      let seen: Record<string, [string, string]> = {};
      await waitFor("up passing, mute critical by its refusal", async () => {
        seen = await checks();
        // "awaiting first check" is critical too: wait for the refusal's own output.
        return seen.up?.[0] === "passing" && seen.mute?.[0] === "critical" &&
          seen.mute[1].endsWith("(ICMP)");
      }, { timeoutMs: 45_000 }).catch((e) => {
        throw new Error(`${e.message}: ${JSON.stringify(seen)}\nlog:\n${agent.log().slice(-3000)}`);
      });
      assert.match(seen.up![1], /^UDP 172\.[\d.]+:9000: reply$/);
      assert.match(seen.mute![1], /^UDP 172\.[\d.]+:9000: port unreachable \(ICMP\)$/);
      // The UDP route serves the passing instance only: every fresh flow reaches "up".
      for (let i = 0; i < 4; i++) {
        client?.close();
        client = await udpClient();
        assert.equal(await client.ask(udpPort, `m${i}`, 5_000), `up:m${i}`);
      }
      // The echo in "up" dies; its container runs on. The refusal turns its check critical and
      // the instance leaves the route: the service has no served instance left.
      await docker("exec", names.up, "killall", "udp_echo");
      await waitFor("up critical by its refusal", async () => {
        seen = await checks();
        return seen.up?.[0] === "critical" && seen.up[1].endsWith("(ICMP)");
      }, { timeoutMs: 45_000 });
      assert.match(seen.up![1], /: port unreachable \(ICMP\)$/);
      const inspect = await docker("inspect", "-f", "{{.State.Running}}", names.up);
      assert.equal(inspect.trim(), "true");
      client?.close();
      client = await udpClient();
      assert.equal(await client.ask(udpPort, "again", 1_500), "");
    } finally {
      client?.close();
      await removeContainers(Object.values(names));
      await stopAll([agent]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
