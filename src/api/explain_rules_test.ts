import assert from "node:assert/strict";
import { instanceSpec } from "./_testing.ts";
import { WATCHED, withTable } from "./_explain_testing.ts";
import type { ContainerExplain } from "../docker/mod.ts";

Deno.test("GET /v1/berth/explain: a route that fails closed says every request is refused and why; the service lists its containers' rejected labels", async () => {
  const bad: ContainerExplain = {
    ...WATCHED,
    name: "bad-1",
    problems: [
      {
        label: "berth.http.allow",
        message: 'berth.http.allow="notacidr": expected CIDR,…; every client gets 403 (none)',
      },
      { label: "berth.lb", message: 'berth.lb="foo": expected a policy; using round_robin' },
    ],
  };
  const f = withTable({
    explain: {
      container: (q) => q === "abc" ? { container: bad, seenAgoMs: 1 } : { error: "none here" },
    },
  });
  try {
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({
        id: "n1:bad-1:80",
        service: "bad",
        httpHosts: ["bad.test"],
        meta: { container: "bad-1", "berth.http.allow": "none" },
      }),
    });
    const s = await (await f.app.request("/v1/berth/explain?service=bad")).json();
    assert.equal(s.routes.options.refused.status, 403);
    assert.ok(
      s.summary.includes(
        "every request is refused: 403 Forbidden, because berth.http.allow=none (rejected: " +
          'bad-1: berth.http.allow="notacidr": expected CIDR,…; every client gets 403 (none))',
      ),
      JSON.stringify(s.summary),
    );
    assert.deepEqual(s.rejected.map((r: { label: string }) => r.label), [
      "berth.http.allow",
      "berth.lb",
    ]);
    assert.equal(s.rejected[0].container, "bad-1");
    assert.equal(s.rejected[0].member, "n1");
    const u = await (await f.app.request("/v1/berth/explain?url=http://bad.test/x")).json();
    assert.equal(u.matched.service, "bad");
    assert.equal(u.pick, null);
    assert.equal(u.pickNote, "every request is answered 403 before balancing");
    assert.ok(
      u.reasons.some((l: string) => l.startsWith("every request is refused: 403 Forbidden")),
      JSON.stringify(u.reasons),
    );
    assert.equal(u.rejected.length, 2);
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain: basic auth of none refuses every request with 401 (set on purpose)", async () => {
  const f = withTable();
  try {
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({
        id: "locked-1",
        service: "locked",
        containerId: null,
        docker: null,
        httpHosts: ["locked.test"],
        meta: { "berth.http.auth.basic": "none" },
      }),
    });
    const s = await (await f.app.request("/v1/berth/explain?service=locked")).json();
    assert.ok(
      s.summary.includes(
        "every request is refused: 401 Unauthorized, because berth.http.auth.basic=none " +
          "(set to none, or a rejected API Meta value)",
      ),
      JSON.stringify(s.summary),
    );
    assert.deepEqual(s.rejected, []);
  } finally {
    f.close();
  }
});

/** A fixture whose proxy serves HTTPS on :8443 (certificates from its store). */
function withHttps() {
  return withTable({
    routes: () => ({
      listen: "127.0.0.1:80",
      https: "127.0.0.1:8443",
      http: [],
      tcp: [],
      conflicts: [],
      ejected: [],
    }),
  });
}

Deno.test("GET /v1/berth/explain?url= runs the URL through redirect=https (plain HTTP only), the regex redirect, strip-prefix and rewrite", async () => {
  const f = withHttps();
  try {
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({
        httpHosts: ["web.test"],
        httpPath: "/app",
        meta: {
          "berth.http.redirect": "https",
          "berth.http.strip-prefix": "true",
          "berth.http.rewrite": "^/old/(.*) /new/$1",
        },
      }),
    });
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({
        id: "n1:www-1:80",
        service: "www",
        httpHosts: ["www.test"],
        meta: { "berth.http.redirect": "^https?://www\\.test/(.*) https://test.example/$1 301" },
      }),
    });
    const url = async (u: string, key?: string) =>
      await (await f.app.request(
        `/v1/berth/explain?url=${encodeURIComponent(u)}${key ? `&key=${key}` : ""}`,
      )).json();
    const plain = await url("http://web.test/app/old/a?q=1");
    assert.equal(plain.scheme, "http");
    assert.deepEqual(plain.rules, [
      "berth.http.redirect=https: this request gets 308 → https://web.test:8443/app/old/a?q=1",
    ]);
    assert.deepEqual(plain.tls, []);
    const tls = await url("https://web.test/app/./old/a?q=1");
    assert.equal(tls.scheme, "https");
    assert.deepEqual(tls.tls, [
      "no certificate for web.test (none names it, no default): the TLS handshake is refused",
    ]);
    assert.deepEqual(tls.rules, [
      "berth.http.redirect=https: applies to plain HTTP only",
      "berth.http.strip-prefix: /app/old/a?q=1 → /old/a?q=1",
      "berth.http.rewrite: /old/a?q=1 → /new/a?q=1",
      "the instance gets /new/a?q=1",
    ]);
    const moved = await url("http://www.test/x?y=1");
    assert.deepEqual(moved.rules, [
      "berth.http.redirect: this request gets 301 → https://test.example/x?y=1",
    ]);
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain?url= checks allow with --key as the client IP", async () => {
  const f = withTable();
  try {
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({
        httpHosts: ["web.test"],
        meta: { "berth.http.allow": "10.0.0.0/8" },
      }),
    });
    const rules = async (key?: string) =>
      (await (await f.app.request(
        `/v1/berth/explain?url=web.test/x${key ? `&key=${key}` : ""}`,
      )).json()).rules;
    assert.deepEqual(await rules(), [
      "berth.http.allow=10.0.0.0/8: other clients get 403 (--key IP checks one)",
      "the instance gets /x",
    ]);
    assert.deepEqual(await rules("10.1.2.3"), [
      "berth.http.allow: client 10.1.2.3 is allowed",
      "the instance gets /x",
    ]);
    assert.deepEqual(await rules("192.0.2.1"), [
      "berth.http.allow: client 192.0.2.1 is not allowed: this request gets 403",
    ]);
  } finally {
    f.close();
  }
});
