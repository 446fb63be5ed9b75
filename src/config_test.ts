import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "./config.ts";
import { testEdgeCert } from "./pki/testing.ts";

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
  ["voters", "9", "out of range; expected an integer in 1..7"],
  ["voters", "three", "not an integer; expected an integer in 1..7"],
  ["node-timeout", "10", "no unit; expected a duration like 10s, 250ms or 1m30s"],
  ["node-timeout", "1d", `unknown unit "d"; expected a duration`],
  ["reconcile-interval", "500ms", "below 1s; expected a duration like 10s, 250ms or 1m30s"],
  ["dns-ttl", "abc", "not an integer; expected an integer in 0..86400"],
  ["http-tls", "on", "unknown mode; expected auto or off"],
  ["dns-ttl", "-1", "not an integer; expected an integer in 0..86400"],
  ["dns-ttl", "86401", "out of range; expected an integer in 0..86400"],
  ["snapshot-entries", "8", "out of range; expected an integer in 16..10000000"],
  ["datacenter", "DC1", `has "D"; expected 1 to 63 lower-case letters, digits, - or _`],
  ["datacenter", "node", `"node" is a label of berth's DNS names; expected 1 to 63`],
  ["dns-service-ttl", "web", `"web" has no '=' between a service name and a TTL; expected NAME=`],
  ["dns-service-ttl", "web=1500ms", "web=1500ms: not whole seconds; expected NAME=DURATION,…"],
  ["dns-service-ttl", "a b=1s", `"a b" is neither * nor a service name`],
];

/** Flags that take no value when bare: a bad value is given as `--dev=maybe`. */
const BOOLS = new Set(["dev", "bootstrap", "internal"]);

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

Deno.test("loadConfig() refuses --proxy-https on the address of --proxy-http", () => {
  assertConfigError(
    () => loadConfig(["--proxy-http", "127.0.0.1:8080", "--proxy-https", "127.0.0.1:8080"], base),
    "--proxy-https 127.0.0.1:8080: the address of --proxy-http too; give the HTTPS listener",
  );
  assertConfigError(
    () => loadConfig(["--dev"], { ...base, env: { BERTH_PROXY_HTTPS: "127.0.0.1:8080" } }),
    "BERTH_PROXY_HTTPS=127.0.0.1:8080: the address of --proxy-http too",
  );
  const c = loadConfig(["--proxy-http", "127.0.0.1:8080", "--proxy-https", "127.0.0.2:8080"], base);
  assert.deepEqual(c.proxyHttps, { host: "127.0.0.2", port: 8080 });
});

Deno.test("loadConfig() --proxy-h2 is on with the HTTPS listener, takes true or false", () => {
  assert.equal(loadConfig([], base).proxyH2, true);
  assert.equal(loadConfig(["--proxy-https", "off"], base).proxyH2, false);
  assert.equal(loadConfig(["--proxy-h2"], base).proxyH2, true);
  assert.equal(loadConfig(["--proxy-h2=false"], base).proxyH2, false);
  for (
    const [argv, re] of [
      [["--proxy-h2", "--proxy-https", "off"], /^--proxy-h2\b.*: HTTP\/2 is served on the HTTPS/],
      [["--proxy-h2=maybe"], /^--proxy-h2 maybe: /],
    ] as [string[], RegExp][]
  ) {
    assert.throws(
      () => loadConfig(argv, base),
      (e: Error) => e.name === "ConfigError" && re.test(e.message) && !e.message.includes("\n"),
      argv.join(" "),
    );
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

Deno.test("loadConfig() --http-tls-cert and --http-tls-key come together", async (t) => {
  await t.step("both files", () => {
    const c = loadConfig(["--http-tls-cert", "a.crt", "--http-tls-key", "a.key"], base);
    assert.deepEqual(c.httpTls, { mode: "files", cert: "a.crt", key: "a.key" });
  });
  await t.step("neither: off, or auto", () => {
    assert.deepEqual(loadConfig([], base).httpTls, { mode: "off" });
    assert.deepEqual(loadConfig(["--http-tls", "auto"], base).httpTls, { mode: "auto" });
  });
  await t.step("files and auto", () => {
    assertConfigError(
      () => loadConfig(["--http-tls-cert=a", "--http-tls-key=b", "--http-tls=auto"], base),
      "--http-tls-cert a: --http-tls auto issues its own certificate; give the files or auto, " +
        "not both",
    );
  });
  await t.step("one of them", () => {
    assertConfigError(
      () => loadConfig(["--http-tls-cert", "a.crt"], base),
      "--http-tls-cert a.crt: --http-tls-key is missing; give both files or neither",
    );
    assertConfigError(
      () => loadConfig([], { ...base, env: { BERTH_HTTP_TLS_KEY: "a.key" } }),
      "BERTH_HTTP_TLS_KEY=a.key: --http-tls-cert is missing; give both files or neither",
    );
  });
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

const TOKEN = `abc123.${"S".repeat(32)}::sha256:${"0f".repeat(32)}`;

Deno.test("loadConfig() cluster security: --tls, --cert-ttl, --join-token (text, file, env)", () => {
  const c = loadConfig([], base);
  assert.equal(c.tls, true);
  assert.equal(c.certTtlMs, 72 * 3_600_000);
  assert.equal(c.joinToken, null);
  assert.equal(loadConfig(["--dev", "--tls", "off"], base).tls, false);
  assert.equal(loadConfig(["--cert-ttl", "1m"], base).certTtlMs, 60_000);
  assert.deepEqual(loadConfig(["--join-token", TOKEN], base).joinToken, {
    id: "abc123",
    secret: "S".repeat(32),
    pin: `sha256:${"0f".repeat(32)}`,
  });
  const fromFile = loadConfig(["--join-token", "/d/join-token"], {
    ...base,
    readFile: (p) => p === "/d/join-token" ? `${TOKEN}\n` : "",
  });
  assert.equal(fromFile.joinToken?.id, "abc123");
  assert.equal(
    loadConfig([], { ...base, env: { BERTH_JOIN_TOKEN: TOKEN } }).joinToken?.id,
    "abc123",
  );
});

Deno.test("loadConfig() cluster security refusals are one line and never show the token", () => {
  const bad = TOKEN.replace("abc123", "ABC123");
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["--tls", "off"], {}, /^--tls off: only together with --dev/],
    [["--dev", "--tls", "maybe"], {}, /^--tls maybe: not on or off; expected on or off/],
    [["--cert-ttl", "30s"], {}, /^--cert-ttl 30s: below 1m; expected/],
    [["--join-token", bad], {}, /^--join-token <redacted>: the id before the dot/],
    [[], { BERTH_JOIN_TOKEN: bad }, /^BERTH_JOIN_TOKEN=<redacted>: the id before the dot/],
    [["--ca-cert", "/x.pem"], {}, /^--ca-cert and --ca-key go together/],
    [["--ca-cert", "/x.pem", "--ca-key", "/k.pem"], {}, /only with --bootstrap/],
  ];
  for (const [argv, env, want] of cases) {
    assert.throws(
      () => loadConfig(argv, { ...base, env, readFile: () => "" }),
      (e: Error) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, want);
        assert.ok(!e.message.includes("S".repeat(32)) && !e.message.includes("\n"), e.message);
        return true;
      },
    );
  }
});

Deno.test("loadConfig() --join-token that is neither a token nor a readable file: never echoes a token-like value, names a path", () => {
  const notFound = (p: string): string => {
    throw new Deno.errors.NotFound(`No such file or directory (os error 2): readfile '${p}'`);
  };
  const secret = "S".repeat(32);
  const refusal = (argv: string[], env: Record<string, string> = {}) => {
    try {
      loadConfig(argv, { ...base, env, readFile: notFound });
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.message;
    }
    assert.fail("accepted");
  };
  // A token with its pin cut off: not a path, so not shown, in no form.
  for (const cut of [`abc123.${secret}`, `abc123.${secret}:`, `abc123.${secret}.txt`]) {
    for (const m of [refusal(["--join-token", cut]), refusal([], { BERTH_JOIN_TOKEN: cut })]) {
      assert.match(
        m,
        /<redacted>: neither a join token \(<id>\.<secret>::sha256:<pin>\) nor a readable file \(No such file or directory \(os error 2\)\); expected a join token/,
      );
      assert.ok(!m.includes(secret) && !m.includes("readfile") && !m.includes("\n"), m);
    }
  }
  // A path is named, so the user sees which file is missing.
  for (const path of ["/etc/berth/join-token", "join-token", "token.txt", "./t"]) {
    assert.match(
      refusal(["--join-token", path]),
      new RegExp(`nor a readable file ${path.replace(".", "\\.")} \\(No such file`),
    );
  }
});

Deno.test("loadConfig() refuses flags that cannot work together: --http-tls auto or --join-token with --tls off, --join-token with --bootstrap", () => {
  const cases: [string[], RegExp][] = [
    [["--dev", "--tls", "off", "--http-tls", "auto"], /^--http-tls auto: needs --tls on/],
    [
      ["--dev", "--bootstrap=false", "--tls", "off", "--join-token", TOKEN],
      /^--join-token <redacted>: not with --tls off/,
    ],
    [["--bootstrap", "--join-token", TOKEN], /^--join-token <redacted>: not with --bootstrap/],
    // --dev bootstraps unless told otherwise.
    [["--dev", "--join-token", TOKEN], /^--join-token <redacted>: not with --bootstrap/],
  ];
  for (const [argv, want] of cases) {
    assert.throws(
      () => loadConfig(argv, base),
      (e: Error) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, want);
        assert.ok(!e.message.includes("S".repeat(32)) && !e.message.includes("\n"), e.message);
        return true;
      },
    );
  }
  // Each alone, and the ones that go together, still load.
  assert.equal(loadConfig(["--dev", "--tls", "off"], base).httpTls.mode, "off");
  assert.equal(loadConfig(["--http-tls", "auto", "--bootstrap"], base).httpTls.mode, "auto");
  assert.equal(
    loadConfig(["--dev", "--bootstrap=false", "--join-token", TOKEN], base).joinToken?.id,
    "abc123",
  );
});

Deno.test("loadConfig() --ca-cert/--ca-key: a CA is loaded, a file that is no CA refused in one line", async () => {
  const { createCa } = await import("./pki/mod.ts");
  const ca = createCa({ clusterId: "c1", now: new Date() });
  const files: Record<string, string> = { "/ca.pem": ca.certPem, "/ca.key": ca.keyPem };
  const c = loadConfig(["--bootstrap", "--ca-cert", "/ca.pem", "--ca-key", "/ca.key"], {
    ...base,
    readFile: (p) => files[p]!,
  });
  assert.equal(c.ca?.certPem, ca.certPem);
  assert.throws(
    () =>
      loadConfig(["--bootstrap", "--ca-cert", "/ca.key", "--ca-key", "/ca.key"], {
        ...base,
        readFile: (p) => files[p]!,
      }),
    (e: Error) =>
      e instanceof ConfigError && /^--ca-cert \/ca.key --ca-key: /.test(e.message) &&
      !e.message.includes("\n"),
  );
});

Deno.test("loadConfig() --acme-*: defaults, values, and one clear line for each bad value", async (t) => {
  const base = { env: {}, hostname: "h1" };
  const d = loadConfig(["--dev"], base).acme;
  assert.deepEqual(d, {
    directory: "https://acme-v02.api.letsencrypt.org/directory",
    email: "",
    caCerts: null,
    all: false,
    domains: [],
  });
  const { caPem } = testEdgeCert(["ca.test"]);
  const given = loadConfig([
    "--dev",
    "--acme-directory",
    "https://127.0.0.1:14000/dir",
    "--acme-email",
    "ops@example.com",
    "--acme-ca-cert",
    "pebble.pem",
    "--acme-all",
    "--acme-domains",
    " Example.COM,shop.example.org. ",
  ], { ...base, readFile: () => caPem }).acme;
  assert.equal(given.directory, "https://127.0.0.1:14000/dir");
  assert.equal(given.email, "ops@example.com");
  assert.equal(given.caCerts?.length, 1);
  assert.equal(given.all, true);
  assert.deepEqual(given.domains, ["example.com", "shop.example.org"]);
  const bad: [string[], RegExp, string?][] = [
    [
      ["--acme-directory", "http://ca.example/dir"],
      /^--acme-directory http:\/\/ca\.example\/dir: not https:\/\//,
    ],
    [["--acme-directory", "acme"], /^--acme-directory acme: not a URL; expected an https:\/\/ URL/],
    [["--acme-email", "nobody"], /^--acme-email nobody: not an email address; expected an email/],
    [["--acme-ca-cert", "x.pem"], /^--acme-ca-cert x\.pem: no PEM certificate in it/, "hello"],
    [
      ["--acme-ca-cert", "x.pem"],
      /^--acme-ca-cert x\.pem: a certificate in it does not parse/,
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ],
    [["--acme-all=maybe"], /^--acme-all maybe: /],
    [
      ["--acme-domains", "*.example.com"],
      /^--acme-domains \*\.example\.com: "\*\.example\.com" is not/,
    ],
    [
      ["--acme-domains", "example.com,,x.org"],
      /^--acme-domains example\.com,,x\.org: an empty name/,
    ],
    [
      ["--acme-domains", "com"],
      /^--acme-domains com: "com" is not a DNS name of two labels or more/,
    ],
    [["--acme-domains", "10.0.0.1"], /^--acme-domains 10\.0\.0\.1: "10\.0\.0\.1" is not/],
  ];
  for (const [argv, re, file] of bad) {
    await t.step(argv.join(" "), () => {
      assert.throws(
        () => loadConfig(["--dev", ...argv], { ...base, readFile: () => file ?? "" }),
        (e: Error) => e.name === "ConfigError" && re.test(e.message) && !e.message.includes("\n"),
      );
    });
  }
});
