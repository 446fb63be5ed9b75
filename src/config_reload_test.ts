import assert from "node:assert/strict";
import { type Config, loadConfig } from "./config.ts";
import { flagOf, planReload } from "./config_reload.ts";
import { AGENT_FLAGS } from "./agent_flags.ts";

/** The config an agent started with `--config /c.json` holding `file` (and `argv`) gets. */
function withFile(file: Record<string, unknown>, argv: string[] = []): Config {
  return loadConfig(["--config", "/c.json", ...argv], {
    env: {},
    hostname: "host-a",
    readFile: () => JSON.stringify(file),
  });
}

const START = { "data-dir": "/srv/berth", dns: "127.0.0.1:8600", "dns-ttl": 0 };

Deno.test("planReload() takes over changed reloadable settings and names them", () => {
  const current = withFile(START);
  const plan = planReload(
    current,
    withFile({
      ...START,
      "dns-ttl": 30,
      "dns-service-ttl": ["web=5s"],
      recursor: "10.0.0.1",
      "drain-timeout": "3s",
    }),
  );
  assert.deepEqual(plan.applied.sort(), [
    "--dns-service-ttl",
    "--dns-ttl",
    "--drain-timeout",
    "--recursor",
  ]);
  assert.deepEqual(plan.refused, []);
  assert.equal(plan.next.dnsTtl, 30);
  assert.deepEqual([...plan.next.dnsServiceTtl], [["web", 5]]);
  assert.deepEqual(plan.next.recursor, [{ host: "10.0.0.1", port: 53 }]);
  assert.equal(plan.next.drainTimeoutMs, 3000);
  assert.equal(current.dnsTtl, 0, "the config in use is not changed");
});

Deno.test("planReload() refuses changed addresses and keeps their values", () => {
  const current = withFile(START);
  const plan = planReload(
    current,
    withFile({ ...START, dns: "127.0.0.1:9600", "data-dir": "/elsewhere", "dns-ttl": 7 }),
  );
  assert.deepEqual(plan.applied, ["--dns-ttl"]);
  assert.deepEqual(plan.refused.sort(), ["--data-dir", "--dns"]);
  assert.deepEqual(plan.next.dns, { host: "127.0.0.1", port: 8600 });
  assert.equal(plan.next.dataDir, "/srv/berth");
  assert.equal(plan.next.dnsTtl, 7);
});

Deno.test("planReload() names each --acme-* flag that differs", () => {
  const plan = planReload(
    withFile(START),
    withFile({ ...START, "acme-email": "ops@example.com", "acme-all": true }),
  );
  assert.deepEqual(plan.refused.sort(), ["--acme-all", "--acme-email"]);
});

Deno.test("planReload() of an unchanged file changes nothing", () => {
  const plan = planReload(withFile(START), withFile({ ...START }));
  assert.deepEqual(plan, { next: plan.next, applied: [], refused: [] });
});

Deno.test("planReload() keeps a flag's value: flags win over the file read again", () => {
  const plan = planReload(
    withFile(START, ["--dns-ttl", "5"]),
    withFile({ ...START, "dns-ttl": 60 }, ["--dns-ttl", "5"]),
  );
  assert.deepEqual(plan.applied, []);
  assert.equal(plan.next.dnsTtl, 5);
});

Deno.test("flagOf() names an agent flag for every Config key", () => {
  const names = new Set(AGENT_FLAGS.map((f) => `--${f.name}`));
  const c = withFile(START);
  for (const key of Object.keys(c)) {
    if (key === "acme") {
      for (const k of Object.keys(c.acme)) {
        assert.ok(names.has(flagOf(`acme.${k}`)), `acme.${k} → ${flagOf(`acme.${k}`)}`);
      }
    } else assert.ok(names.has(flagOf(key)), `${key} → ${flagOf(key)}`);
  }
});
