/** loadConfig(): the cluster's security flags (--tls, --http-tls*, --join-token, --ca-*). */
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "./config.ts";

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
