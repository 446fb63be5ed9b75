import assert from "node:assert/strict";
import { addToken, fixture } from "./_testing.ts";

const CONSUL_HEADERS = ["X-Consul-Index", "X-Consul-KnownLeader", "X-Consul-LastContact"];

/** A request path for a route pattern: parameters and wildcards filled with `x`. */
function pathOf(pattern: string): string {
  return pattern.replace(/:[^/]+/g, "x").replace(/\*$/, "x");
}

Deno.test("createApp() every /v1 route answers with Consul's index and leader headers", async () => {
  const f = fixture();
  const seen: string[] = [];
  for (const { method, path } of f.app.routes) {
    if (method === "ALL" || !path.startsWith("/v1/")) continue;
    const init: RequestInit = { method };
    if (method === "PUT" || method === "POST") init.body = "{}";
    const r = await f.app.request(pathOf(path), init);
    await r.body?.cancel();
    seen.push(`${method} ${path}`);
    assert.notEqual(r.status, 500, `${method} ${path} answered 500`);
    for (const h of CONSUL_HEADERS) {
      assert.ok(r.headers.has(h), `${method} ${path} (${r.status}) lacks ${h}`);
    }
    assert.ok(Number(r.headers.get("X-Consul-Index")) >= 1, `${method} ${path} index`);
  }
  assert.ok(seen.length > 20, `only ${seen.length} routes walked`);
  f.close();
});

Deno.test("createApp() 404s, 405s, 400s and 403s carry the Consul headers too", async () => {
  const f = fixture({ aclDefault: "deny" });
  addToken(f.store, "mgmt", "management");
  const answers = [
    await f.app.request("/v1/session/create", { method: "PUT" }), // 403: no token
    await f.app.request("/v1/nope"), // unknown route
    await f.app.request("/v1/agent/check/register"), // 405
    await f.app.request("/v1/catalog/services?index=x"), // 400
    await f.app.request("/v1/kv/missing", { headers: { "X-Consul-Token": "mgmt" } }), // 404
  ];
  assert.deepEqual(answers.map((r) => r.status), [403, 404, 405, 400, 404]);
  for (const r of answers) {
    await r.body?.cancel();
    for (const h of CONSUL_HEADERS) assert.ok(r.headers.has(h), `${r.status} lacks ${h}`);
    assert.equal(r.headers.get("X-Consul-KnownLeader"), "true");
  }
  // Outside /v1 nothing is added.
  const ui = await f.app.request("/ui");
  await ui.body?.cancel();
  assert.equal(ui.headers.has("X-Consul-Index"), false);
  f.close();
});
