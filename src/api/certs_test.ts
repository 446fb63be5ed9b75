import assert from "node:assert/strict";
import { ClusterKey, ClusterKeyBox, openEdgeKey } from "../pki/mod.ts";
import { testEdgeCert } from "../pki/testing.ts";
import { fixture, put } from "./_testing.ts";

const WEB = testEdgeCert(["web.example.com", "*.example.com"]);
const API = testEdgeCert(["api.example.com"]);
const keyLine = WEB.keyPem.split("\n")[1]!;

/** The app with `box` as its secret box (null: none). */
function withCerts(box: ClusterKeyBox | null = new ClusterKeyBox(ClusterKey.generate())) {
  return { f: fixture(box === null ? {} : { secrets: box }), box };
}

Deno.test("PUT /v1/berth/certs/:name stores the certificate with its key sealed, GET lists it without", async () => {
  const { f, box } = withCerts();
  try {
    const r = await f.app.request(
      "/v1/berth/certs/web",
      put({ certPem: WEB.certPem, keyPem: WEB.keyPem }),
    );
    assert.equal(r.status, 200, await r.clone().text());
    const view = await r.json();
    assert.equal(view.name, "web");
    assert.deepEqual(view.names, ["web.example.com", "*.example.com"]);
    assert.equal(view.source, "manual");
    assert.equal(view.default, false);
    assert.equal(view.issuer, "O=berth, CN=berth CA edge-test");
    assert.match(view.fingerprint, /^[0-9a-f]{64}$/);
    assert.ok(!("keySealed" in view) && !("certPem" in view));

    const stored = f.store.edgeCert("web")!;
    assert.match(stored.keySealed, /^bs1:/);
    assert.equal(openEdgeKey(box!, stored), WEB.keyPem);

    const list = await f.app.request("/v1/berth/certs");
    assert.equal(list.status, 200);
    const text = await list.text();
    assert.deepEqual(JSON.parse(text), [view]);
    assert.ok(!text.includes(keyLine) && !text.includes("bs1:") && !text.includes("PRIVATE"));
    assert.equal(list.headers.get("X-Consul-Index"), String(f.store.tableIndex("edge_certs")));

    const one = await f.app.request("/v1/berth/certs/web");
    assert.deepEqual(await one.json(), view);
  } finally {
    f.close();
  }
});

Deno.test("PUT /v1/berth/certs/:name default: true moves the default; without it a replacement keeps it", async () => {
  const { f } = withCerts();
  try {
    const putCert = (name: string, t: typeof WEB, extra: Record<string, unknown> = {}) =>
      f.app.request(
        `/v1/berth/certs/${name}`,
        put({ certPem: t.certPem, keyPem: t.keyPem, ...extra }),
      );
    assert.equal((await putCert("web", WEB, { default: true })).status, 200);
    assert.equal((await putCert("api", API)).status, 200);
    assert.equal((await putCert("web", WEB)).status, 200); // replaced, still the default
    const defaults = () => f.store.edgeCerts().map((c) => [c.name, c.isDefault]);
    assert.deepEqual(defaults(), [["api", false], ["web", true]]);
    assert.equal((await putCert("api", API, { default: true })).status, 200);
    assert.deepEqual(defaults(), [["api", true], ["web", false]]);
    assert.equal((await putCert("api", API, { default: false })).status, 200);
    assert.deepEqual(defaults(), [["api", false], ["web", false]]);
  } finally {
    f.close();
  }
});

Deno.test("DELETE /v1/berth/certs/:name removes it; 404 for a name without one", async () => {
  const { f } = withCerts();
  try {
    await f.app.request("/v1/berth/certs/web", put({ certPem: WEB.certPem, keyPem: WEB.keyPem }));
    const r = await f.app.request("/v1/berth/certs/web", { method: "DELETE" });
    assert.equal(r.status, 200);
    assert.deepEqual(f.store.edgeCerts(), []);
    const again = await f.app.request("/v1/berth/certs/web", { method: "DELETE" });
    assert.equal(again.status, 404);
    assert.equal(await again.text(), "no certificate web\n");
    const get = await f.app.request("/v1/berth/certs/web");
    assert.equal(get.status, 404);
  } finally {
    f.close();
  }
});

Deno.test("PUT /v1/berth/certs/:name refuses bad bodies with one 400 line and stores nothing", async (t) => {
  const { f } = withCerts();
  const expired = testEdgeCert(["old.example"], {
    now: new Date(Date.now() - 400 * 86_400_000),
    ttlMs: 86_400_000,
  });
  const cases: [string, string, unknown, RegExp][] = [
    ["not JSON", "web", "{", /^certificate: invalid JSON body/],
    ["a list", "web", [], /^certificate: body must be a JSON object$/],
    ["no certPem", "web", { keyPem: WEB.keyPem }, /^certificate: certPem must be PEM text$/],
    ["no keyPem", "web", { certPem: WEB.certPem }, /^certificate: keyPem must be PEM text$/],
    [
      "keyPem a number",
      "web",
      { certPem: WEB.certPem, keyPem: 3 },
      /^certificate: keyPem must be PEM text$/,
    ],
    [
      "default not boolean",
      "web",
      { certPem: WEB.certPem, keyPem: WEB.keyPem, default: "yes" },
      /^certificate: default must be true or false$/,
    ],
    [
      "unknown field",
      "web",
      { certPem: WEB.certPem, keyPem: WEB.keyPem, key: "x" },
      /^certificate: unknown field "key" \(expected certPem, keyPem, default\)$/,
    ],
    [
      "bad name",
      "a%20b",
      { certPem: WEB.certPem, keyPem: WEB.keyPem },
      /^certificate name "a b": expected 1 to 253/,
    ],
    [
      "bad percent-encoding",
      "%zz",
      { certPem: WEB.certPem, keyPem: WEB.keyPem },
      /malformed percent-encoding/,
    ],
    [
      "garbage certificate",
      "web",
      { certPem: "hello", keyPem: WEB.keyPem },
      /^certificate web: certPem: no PEM block/,
    ],
    [
      "chain reversed",
      "web",
      { certPem: WEB.caPem + WEB.leafPem, keyPem: WEB.keyPem },
      /^certificate web: certPem: certificate 2 did not issue certificate 1/,
    ],
    [
      "key of another certificate",
      "web",
      { certPem: WEB.certPem, keyPem: API.keyPem },
      /^certificate web: keyPem: the key does not match the certificate's public key$/,
    ],
    [
      "expired",
      "web",
      { certPem: expired.certPem, keyPem: expired.keyPem },
      /^certificate web: certPem: the certificate expired on/,
    ],
    [
      "huge certificate",
      "web",
      { certPem: "x".repeat(70_000), keyPem: WEB.keyPem },
      /^certificate web: certPem: expected PEM text of at most 65536 characters$/,
    ],
  ];
  try {
    for (const [what, name, body, want] of cases) {
      await t.step(what, async () => {
        const r = await f.app.request(`/v1/berth/certs/${name}`, put(body as string));
        const text = await r.text();
        assert.equal(r.status, 400, text);
        assert.match(text.trimEnd(), want);
        assert.equal(text.trimEnd().split("\n").length, 1, "one line");
        assert.ok(!text.includes(keyLine), "never the key");
        assert.deepEqual(f.store.edgeCerts(), []);
      });
    }
  } finally {
    f.close();
  }
});

Deno.test("PUT /v1/berth/certs/:name answers 503 while this member has no cluster key", async () => {
  const { f } = withCerts(new ClusterKeyBox());
  try {
    const r = await f.app.request(
      "/v1/berth/certs/web",
      put({ certPem: WEB.certPem, keyPem: WEB.keyPem }),
    );
    assert.equal(r.status, 503);
    assert.match(await r.text(), /this member has no cluster key yet .*; retry/);
    assert.deepEqual(f.store.edgeCerts(), []);
  } finally {
    f.close();
  }
  const none = withCerts(null).f;
  try {
    const r = await none.app.request(
      "/v1/berth/certs/web",
      put({ certPem: WEB.certPem, keyPem: WEB.keyPem }),
    );
    assert.equal(r.status, 503);
  } finally {
    none.close();
  }
});
