import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "./config.ts";

const base = { env: {}, hostname: "host-a" };

Deno.test("loadConfig() gives embedded defaults", () => {
  const c = loadConfig([], base);
  assert.equal(c.node, "host-a");
  assert.equal(c.dataDir, "/var/lib/berth");
  assert.deepEqual(c.bind, { host: "127.0.0.1", port: 8300 });
  assert.equal(c.advertise, "127.0.0.1");
  assert.deepEqual(c.proxyHttp, { host: "0.0.0.0", port: 80 });
  assert.deepEqual(c.proxyHttps, { host: "0.0.0.0", port: 443 });
  assert.equal(c.docker, "unix:///var/run/docker.sock");
  assert.equal(c.domain, "berth.");
  assert.equal(c.bootstrap, false);
  assert.equal(c.voters, 3);
  assert.equal(c.nodeTimeoutMs, 10_000);
  assert.equal(c.drainTimeoutMs, 10_000);
});

Deno.test("loadConfig() --dev changes the dev defaults only", () => {
  const c = loadConfig(["--dev"], base);
  assert.equal(c.dataDir, "./data");
  assert.equal(c.bootstrap, true);
  assert.deepEqual(c.proxyHttp, { host: "127.0.0.1", port: 8080 });
  assert.deepEqual(c.proxyHttps, { host: "127.0.0.1", port: 8443 });
  const d = loadConfig(
    ["--dev", "--data-dir=/x", "--proxy-http", "off", "--proxy-https", "off"],
    base,
  );
  assert.equal(d.dataDir, "/x");
  assert.equal(d.proxyHttp, null);
  assert.equal(d.proxyHttps, null);
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

/** A bad value for every flag, and the reason the message must give. */
const BAD_VALUES: [flag: string, value: string, why: string][] = [
  ["dev", "maybe", "not a boolean; expected true or false"],
  ["node", "a b", `has " "; expected 1 to 63 letters`],
  ["node", "-a", "starts with a character other than a letter or digit"],
  ["data-dir", "", "empty; expected a directory path"],
  ["bind", "foo:1", `"foo" is not an IP address; expected IP:PORT like 127.0.0.1:8300`],
  ["bind", "127.0.0.1", "missing :port; expected IP:PORT"],
  ["advertise", "example.com", "not an IP address; expected an IP address"],
  ["bootstrap", "maybe", "not a boolean; expected true or false"],
  ["join", "10.0.0.1,x.y", `"x.y" is not an IP address; expected IP[:PORT],…`],
  ["http", "127.0.0.1:70000", `port "70000" is not in 1..65535; expected IP:PORT`],
  ["dns", "localhost", "missing :port; expected IP:PORT like 127.0.0.1:8600"],
  ["domain", "bad_domain", `has "_"; expected a domain name`],
  ["recursor", "1.1.1.1:0", `port "0" is not in 1..65535; expected IP[:PORT],…`],
  ["edge-domain", "bad domain", `has " "; expected a domain name`],
  ["edge-domain", "a..b", "an empty label (two dots in a row); expected a domain name"],
  ["proxy-http", "on", `"on" is not an IP address; expected IP:PORT like 0.0.0.0:80, or off`],
  ["proxy-https", "on", `"on" is not an IP address; expected IP:PORT like 0.0.0.0:443, or off`],
  ["proxy-https", "127.0.0.1", "missing :port; expected IP:PORT like 0.0.0.0:443, or off"],
  ["docker", "ftp://x", "unknown scheme; expected unix:///path/docker.sock"],
  ["internal", "2", "not a boolean; expected true or false"],
  ["expose-by-default", "no way", "not a boolean; expected true or false"],
  ["voters", "9", "out of range; expected an integer in 1..7"],
  ["voters", "three", "not an integer; expected an integer in 1..7"],
  ["node-timeout", "10", "no unit; expected a duration like 10s, 250ms or 1m30s"],
  ["node-timeout", "1d", `unknown unit "d"; expected a duration`],
  ["reconcile-interval", "500ms", "below 1s; expected a duration like 10s, 250ms or 1m30s"],
  ["drain-timeout", "10", "no unit; expected a duration like 10s, 250ms or 1m30s, at most 1h"],
  ["drain-timeout", "2h", "above 1h; expected a duration like 10s, 250ms or 1m30s, at most 1h"],
  ["dns-ttl", "abc", "not an integer; expected an integer in 0..86400"],
  ["http-tls", "on", "unknown mode; expected auto or off"],
  ["dns-ttl", "-1", "not an integer; expected an integer in 0..86400"],
  ["dns-ttl", "86401", "out of range; expected an integer in 0..86400"],
  ["dns-workers", "0", "out of range; expected an integer in 1..64"],
  ["dns-workers", "65", "out of range; expected an integer in 1..64"],
  ["dns-workers", "1.5", "not an integer; expected an integer in 1..64"],
  ["dns-workers", "-2", "not an integer; expected an integer in 1..64"],
  ["snapshot-entries", "8", "out of range; expected an integer in 16..10000000"],
  ["proxy-workers", "0", "out of range; expected an integer in 1..64"],
  ["proxy-workers", "65", "out of range; expected an integer in 1..64"],
  ["proxy-workers", "1.5", "not an integer; expected an integer in 1..64"],
  ["proxy-workers", "-2", "not an integer; expected an integer in 1..64"],
  ["proxy-workers", "", "not an integer; expected an integer in 1..64"],
  [
    "proxy-protocol-from",
    "10.0.0.0/33",
    `"10.0.0.0/33" is not an IP address or CIDR; expected CIDR`,
  ],
  ["proxy-protocol-from", "10.0.0.1,lb", `"lb" is not an IP address or CIDR; expected CIDR,…`],
  ["request-id-from", "lb", `"lb" is not an IP address or CIDR; expected any, none or CIDR,…`],
  ["request-id-from", "", "empty; expected any, none or CIDR,…"],
  ["request-id-from", " , ", "empty; expected any, none or CIDR,…"],
  ["request-id-from", "none,10.0.0.0/8", `"none" stands alone, not in a list; expected any, none`],
  ["request-id-from", "10.0.0.0/8, any", `"any" stands alone, not in a list; expected any, none`],
  ["request-id-from", "None", `"None" is not an IP address or CIDR; expected any, none`],
  ["access-log", "", "empty; expected stdout, off or a file path"],
  ["access-log-format", "apache", "unknown format; expected json, common or combined"],
  ["datacenter", "DC1", `has "D"; expected 1 to 63 lower-case letters, digits, - or _`],
  ["datacenter", "node", `"node" is a label of berth's DNS names; expected 1 to 63`],
  ["dns-service-ttl", "web", `"web" has no '=' between a service name and a TTL; expected NAME=`],
  ["dns-service-ttl", "web=1500ms", "web=1500ms: not whole seconds; expected NAME=DURATION,…"],
  ["dns-service-ttl", "a b=1s", `"a b" is neither * nor a service name`],
];

/** Flags that take no value when bare: a bad value is given as `--dev=maybe`. */
const BOOLS = new Set(["dev", "bootstrap", "internal", "expose-by-default"]);

/** How a message shows a value: bare when it is one printable word, else quoted. */
const shown = (v: string) => /^[!#-~]+$/.test(v) ? v : JSON.stringify(v);

function assertConfigError(f: () => unknown, message: string | RegExp): void {
  assert.throws(f, (e: Error) => {
    assert.ok(e instanceof ConfigError, String(e));
    if (typeof message === "string") assert.ok(e.message.startsWith(message), e.message);
    else assert.match(e.message, message);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
}

Deno.test("loadConfig() names a bad flag value, what is wrong and what is expected", async (t) => {
  for (const [flag, value, why] of BAD_VALUES) {
    await t.step(`--${flag} ${value}`, () => {
      assertConfigError(
        () => loadConfig(BOOLS.has(flag) ? [`--${flag}=${value}`] : [`--${flag}`, value], base),
        `--${flag} ${shown(value)}: ${why}`,
      );
    });
  }
});

Deno.test("loadConfig() names a bad BERTH_ variable the same way", async (t) => {
  for (const [flag, value, why] of BAD_VALUES) {
    if (value === "") continue; // an empty variable counts as unset
    const name = `BERTH_${flag.toUpperCase().replaceAll("-", "_")}`;
    await t.step(`${name}=${value}`, () => {
      assertConfigError(
        () => loadConfig([], { ...base, env: { [name]: value } }),
        `${name}=${shown(value)}: ${why}`,
      );
    });
  }
});

Deno.test("loadConfig() names a bad config file value by file and key", async (t) => {
  for (const [flag, value, why] of BAD_VALUES) {
    await t.step(`${flag}: ${JSON.stringify(value)}`, () => {
      const readFile = () => JSON.stringify({ [flag]: value });
      assertConfigError(
        () => loadConfig(["--config", "b.json"], { ...base, readFile }),
        `b.json ${flag} ${JSON.stringify(value)}: ${why}`,
      );
    });
  }
});

Deno.test("loadConfig() rejects malformed argv with one line", async (t) => {
  const cases: [string[], string][] = [
    [["--nope"], "unknown flag --nope (see berth agent --help)"],
    [["--http"], "--http needs a value (see berth agent --help)"],
    [["stray"], `unexpected argument "stray" (flags start with --) (see berth agent --help)`],
  ];
  for (const [argv, message] of cases) {
    await t.step(argv.join(" "), () => assertConfigError(() => loadConfig(argv, base), message));
  }
});

Deno.test("loadConfig() checks the hostname as --node's default at start", () => {
  // Regression: a hostname that is no valid member name used to pass here and fail later, at
  // the first join, as "malformed join request".
  assertConfigError(
    () => loadConfig([], { env: {}, hostname: "my_laptop (2)" }),
    `--node not given, and the hostname "my_laptop (2)" is no member name: has " "; ` +
      "expected 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit " +
      "(set --node)",
  );
  assertConfigError(() => loadConfig([], { env: {}, hostname: "x".repeat(64) }), /64 characters/);
  assert.equal(loadConfig(["--node", "n1"], { env: {}, hostname: "my_laptop (2)" }).node, "n1");
});

Deno.test("loadConfig() warns once per unknown BERTH_ variable with the closest known name", () => {
  const lines: string[] = [];
  const env = {
    BERTH_DNSTTL: "3",
    BERTH_BOOTSTRAPP: "1",
    BERTH_SOMETHING_ELSE_ENTIRELY: "x",
    BERTH_HTTP_ADDR: "http://127.0.0.1:8500",
    BERTH_TOKEN: "t",
    BERTH_TEST_IMAGE: "berth-test:latest",
    PATH: "/bin",
  };
  const c = loadConfig([], { env, hostname: "h", warn: (l) => lines.push(l) });
  assert.equal(c.dnsTtl, 0);
  assert.deepEqual(lines, [
    "ignoring BERTH_BOOTSTRAPP: not a berth setting (did you mean BERTH_BOOTSTRAP?)",
    "ignoring BERTH_DNSTTL: not a berth setting (did you mean BERTH_DNS_TTL?)",
    "ignoring BERTH_SOMETHING_ELSE_ENTIRELY: not a berth setting (see berth agent --help)",
  ]);
});

Deno.test("loadConfig() rejects a bad --config file", () => {
  const read = (text: string) => () => text;
  assertConfigError(
    () => loadConfig(["--config", "f.json"], { env: {}, readFile: read("{") }),
    "--config f.json: not JSON: ",
  );
  assertConfigError(
    () => loadConfig(["--config", "f.json"], { env: {}, readFile: read("[1]") }),
    `--config f.json: not a JSON object; expected {"flag": value}`,
  );
  assertConfigError(
    () => loadConfig(["--config", "f.json"], { env: {}, readFile: read('{"colour":1}') }),
    `f.json "colour": unknown key; expected a flag name`,
  );
  assertConfigError(
    () => loadConfig(["--config", "f.json"], { env: {}, readFile: read('{"dns_ttl":1}') }),
    `f.json "dns_ttl": unknown key; expected a flag name (did you mean "dns-ttl"?)`,
  );
  assertConfigError(
    () => loadConfig(["--config", "f.json"], { env: {}, readFile: read('{"voters":{"n":3}}') }),
    `f.json voters {"n":3}: not a string, number, boolean or list of strings; expected an integer`,
  );
  assertConfigError(
    () =>
      loadConfig(["--config", "f.json"], {
        env: {},
        readFile: () => {
          throw new Error("No such file");
        },
      }),
    "--config f.json: cannot read: No such file",
  );
  assertConfigError(
    () => loadConfig([], { env: { BERTH_CONFIG: "e.json" }, readFile: read("{") }),
    "BERTH_CONFIG=e.json: not JSON: ",
  );
});

Deno.test("loadConfig() reads numbers, booleans and lists from the config file", () => {
  const file = { "dns-ttl": 5, bootstrap: true, join: ["10.0.0.1", "10.0.0.2:9000"] };
  const c = loadConfig(["--config", "f.json"], { ...base, readFile: () => JSON.stringify(file) });
  assert.equal(c.dnsTtl, 5);
  assert.equal(c.bootstrap, true);
  assert.deepEqual(c.join, ["10.0.0.1:8300", "10.0.0.2:9000"]);
});

Deno.test("loadConfig() --datacenter defaults to dc1; --dns-service-ttl repeats, env and file lists", () => {
  const c = loadConfig(["--dns-service-ttl", "web=30s", "--dns-service-ttl=*=5s,DB=1m"], base);
  assert.equal(c.datacenter, "dc1");
  assert.deepEqual([...c.dnsServiceTtl], [["web", 30], ["*", 5], ["db", 60]]);
  assert.deepEqual([...loadConfig([], base).dnsServiceTtl], []);
  const env = loadConfig([], { ...base, env: { BERTH_DNS_SERVICE_TTL: "api=2s,*=1s" } });
  assert.deepEqual([...env.dnsServiceTtl], [["api", 2], ["*", 1]]);
  const file = loadConfig(["--config", "f.json"], {
    ...base,
    readFile: () => JSON.stringify({ "dns-service-ttl": ["web=3s", "*=4s"], datacenter: "eu-1" }),
  });
  assert.deepEqual([...file.dnsServiceTtl], [["web", 3], ["*", 4]]);
  assert.equal(file.datacenter, "eu-1");
});

Deno.test("loadConfig() --acl-default is deny, allow under --dev; a bad value names allow or deny", () => {
  assert.equal(loadConfig([], base).aclDefault, "deny");
  assert.equal(loadConfig(["--dev"], base).aclDefault, "allow");
  assert.equal(loadConfig(["--dev", "--acl-default", "deny"], base).aclDefault, "deny");
  assert.equal(
    loadConfig([], { ...base, env: { BERTH_ACL_DEFAULT: "allow" } }).aclDefault,
    "allow",
  );
  assert.throws(
    () => loadConfig(["--acl-default", "open"], base),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message === "--acl-default open: not allow or deny; expected allow or deny",
  );
});

Deno.test("loadConfig() refuses the removed --token (flag or file key) pointing at ACL tokens; BERTH_TOKEN is the CLI's", () => {
  for (const argv of [["--token", "x"], ["--token=x"], ["--dev", "--token"]]) {
    assert.throws(
      () => loadConfig(argv, base),
      (e: unknown) =>
        e instanceof ConfigError &&
        /^--token was removed: the API takes ACL tokens/.test(e.message) &&
        e.message.includes("berth acl token create"),
      argv.join(" "),
    );
  }
  assert.throws(
    () => loadConfig(["--config", "/c.json"], { ...base, readFile: () => '{"token": "x"}' }),
    /\/c\.json token was removed: the API takes ACL tokens/,
  );
  const warnings: string[] = [];
  loadConfig([], { ...base, env: { BERTH_TOKEN: "client-side" }, warn: (l) => warnings.push(l) });
  assert.deepEqual(warnings, []);
});

Deno.test("loadConfig() runs one proxy worker per core by default; --proxy-workers and its env set it", () => {
  const cores = Math.min(navigator.hardwareConcurrency || 1, 64);
  assert.equal(loadConfig([], base).proxyWorkers, cores);
  assert.equal(loadConfig(["--proxy-workers", "1"], base).proxyWorkers, 1);
  assert.equal(loadConfig([], { ...base, env: { BERTH_PROXY_WORKERS: "3" } }).proxyWorkers, 3);
});

Deno.test("loadConfig() reads --proxy-protocol-from from flags, env and the config file as canonical CIDRs", () => {
  assert.deepEqual(loadConfig([], base).proxyProtocolFrom, []);
  assert.deepEqual(
    loadConfig(["--proxy-protocol-from", "10.1.2.3/8, 192.168.1.7,2001:db8::1/32"], base)
      .proxyProtocolFrom,
    ["10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32"],
  );
  assert.deepEqual(
    loadConfig([], { ...base, env: { BERTH_PROXY_PROTOCOL_FROM: "127.0.0.1" } }).proxyProtocolFrom,
    ["127.0.0.1/32"],
  );
  const file = { ...base, readFile: () => '{"proxy-protocol-from": "172.16.0.0/12"}' };
  assert.deepEqual(loadConfig(["--config", "/c.json"], file).proxyProtocolFrom, ["172.16.0.0/12"]);
});

Deno.test("loadConfig() reads --request-id-from any (the default: null), none (empty) or canonical CIDRs from flags, env and the config file", () => {
  assert.equal(loadConfig([], base).requestIdFrom, null);
  assert.equal(loadConfig(["--request-id-from", "any"], base).requestIdFrom, null);
  assert.deepEqual(loadConfig(["--request-id-from", " none "], base).requestIdFrom, []);
  assert.deepEqual(
    loadConfig([], { ...base, env: { BERTH_REQUEST_ID_FROM: "none" } }).requestIdFrom,
    [],
  );
  const none = { ...base, readFile: () => '{"request-id-from": "none"}' };
  assert.deepEqual(loadConfig(["--config", "/c.json"], none).requestIdFrom, []);
  // A flag wins over the config file's none.
  assert.equal(
    loadConfig(["--config", "/c.json", "--request-id-from", "any"], none).requestIdFrom,
    null,
  );
  assert.deepEqual(
    loadConfig(["--request-id-from", "10.1.2.3/8,::1"], base).requestIdFrom,
    ["10.0.0.0/8", "::1/128"],
  );
  assert.deepEqual(
    loadConfig([], { ...base, env: { BERTH_REQUEST_ID_FROM: "0.0.0.0/0,::/0" } }).requestIdFrom,
    ["0.0.0.0/0", "::/0"],
  );
  const file = { ...base, readFile: () => '{"request-id-from": "172.16.0.0/12"}' };
  assert.deepEqual(loadConfig(["--config", "/c.json"], file).requestIdFrom, ["172.16.0.0/12"]);
});

Deno.test("loadConfig() reads --access-log and --access-log-format from flags, env and the config file", () => {
  const c = loadConfig([], base);
  assert.equal(c.accessLog, null);
  assert.equal(c.accessLogFormat, "json");
  const flags = loadConfig(["--access-log", "stdout", "--access-log-format", "combined"], base);
  assert.equal(flags.accessLog, "stdout");
  assert.equal(flags.accessLogFormat, "combined");
  const env = loadConfig([], {
    ...base,
    env: { BERTH_ACCESS_LOG: "/var/log/berth/access.log", BERTH_ACCESS_LOG_FORMAT: "common" },
  });
  assert.equal(env.accessLog, "/var/log/berth/access.log");
  assert.equal(env.accessLogFormat, "common");
  const file = {
    ...base,
    readFile: () => '{"access-log": "access.log", "access-log-format": "combined"}',
  };
  const fromFile = loadConfig(["--config", "/c.json"], file);
  assert.equal(fromFile.accessLog, "access.log");
  assert.equal(fromFile.accessLogFormat, "combined");
  assert.equal(loadConfig(["--access-log", "off"], file).accessLog, null);
});
