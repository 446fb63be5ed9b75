import assert from "node:assert/strict";
import { agentHelp, ConfigError, loadConfig } from "./config.ts";

const base = { env: {}, hostname: "host-a" };

Deno.test("loadConfig() gives embedded defaults", () => {
  const c = loadConfig([], base);
  assert.equal(c.node, "host-a");
  assert.equal(c.dataDir, "/var/lib/berth");
  assert.deepEqual(c.bind, { host: "127.0.0.1", port: 8300 });
  assert.equal(c.advertise, "127.0.0.1");
  assert.deepEqual(c.proxyHttp, { host: "0.0.0.0", port: 80 });
  assert.equal(c.docker, "unix:///var/run/docker.sock");
  assert.equal(c.domain, "berth.");
  assert.equal(c.bootstrap, false);
  assert.equal(c.voters, 3);
  assert.equal(c.nodeTimeoutMs, 10_000);
});

Deno.test("loadConfig() --dev changes the dev defaults only", () => {
  const c = loadConfig(["--dev"], base);
  assert.equal(c.dataDir, "./data");
  assert.equal(c.bootstrap, true);
  assert.deepEqual(c.proxyHttp, { host: "127.0.0.1", port: 8080 });
  const d = loadConfig(["--dev", "--data-dir=/x", "--proxy-http", "off"], base);
  assert.equal(d.dataDir, "/x");
  assert.equal(d.proxyHttp, null);
});

Deno.test("loadConfig() precedence is flags > env > file > defaults", () => {
  const file = JSON.stringify({ "dns": "127.0.0.1:1053", "http": "127.0.0.1:1", "node": "f" });
  const opts = {
    env: { BERTH_HTTP: "127.0.0.1:2", BERTH_NODE: "e", BERTH_CONFIG: "/c.json" },
    readFile: () => file,
    hostname: "h",
  };
  const c = loadConfig(["--node", "flag"], opts);
  assert.equal(c.node, "flag");
  assert.deepEqual(c.http, { host: "127.0.0.1", port: 2 });
  assert.deepEqual(c.dns, { host: "127.0.0.1", port: 1053 });
});

Deno.test("loadConfig() rejects bad values with one line naming the input", () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["--nope"], {}, /unknown flag --nope/],
    [["--http", "127.0.0.1:70000"], {}, /--http: "127.0.0.1:70000" is invalid.*1\.\.65535/],
    [["--dns", "localhost"], {}, /--dns.*missing :port/],
    [["--bind", "foo:1"], {}, /--bind.*not an IP/],
    [["--node-timeout", "10"], {}, /--node-timeout.*duration/],
    [["--voters", "9"], {}, /--voters.*1\.\.7/],
    [["--domain", "bad_domain"], {}, /--domain/],
    [["--docker", "ftp://x"], {}, /--docker/],
    [["--node", "a b"], {}, /--node/],
    [["--http"], {}, /--http needs a value/],
    [["stray"], {}, /unexpected argument/],
    [[], { BERTH_DNS_TTL: "-1" }, /BERTH_DNS_TTL: "-1" is invalid/],
    [[], { BERTH_DEV: "maybe" }, /BERTH_DEV.*true\|false/],
    [["--join", "x.y"], {}, /--join: "x.y"/],
  ];
  for (const [argv, env, re] of cases) {
    assert.throws(() => loadConfig(argv, { env, hostname: "h" }), (e: Error) => {
      assert.ok(e instanceof ConfigError, `${argv}: ${e}`);
      assert.match(e.message, re);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  }
});

Deno.test("loadConfig() rejects a bad --config file", () => {
  const read = (text: string) => () => text;
  assert.throws(
    () => loadConfig(["--config", "f.json"], { env: {}, readFile: read("{") }),
    /f.json: not a JSON object/,
  );
  assert.throws(
    () => loadConfig(["--config", "f.json"], { env: {}, readFile: read('{"colour":1}') }),
    /unknown key "colour"/,
  );
  assert.throws(
    () =>
      loadConfig(["--config", "f.json"], {
        env: {},
        readFile: () => {
          throw new Error("No such file");
        },
      }),
    /cannot read/,
  );
});

Deno.test("agentHelp() lists every flag with its default", () => {
  const help = agentHelp();
  for (
    const f of ["--dev", "--node", "--data-dir", "--proxy-http", "--edge-domain", "--internal"]
  ) {
    assert.match(help, new RegExp(f));
  }
  assert.match(help, /default 127\.0\.0\.1:8500/);
});
