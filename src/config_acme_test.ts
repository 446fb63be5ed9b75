/** loadConfig(): the edge's TLS flags (--proxy-https, --proxy-h2) and --acme-* (config_acme.ts). */
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "./config.ts";
import { testEdgeCert } from "./pki/testing.ts";

const base = { env: {}, hostname: "host-a" };

function assertConfigError(f: () => unknown, message: string | RegExp): void {
  assert.throws(f, (e: Error) => {
    assert.ok(e instanceof ConfigError, String(e));
    if (typeof message === "string") assert.ok(e.message.startsWith(message), e.message);
    else assert.match(e.message, message);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
}

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
