import assert from "node:assert/strict";
import { needOf, ROUTE_RULES, ruleOf } from "./acl_routes.ts";
import { fixture } from "./_testing.ts";

/** The handler routes of the app: its middlewares (`ALL` on a wildcard) left out. */
function appRoutes(): string[] {
  const f = fixture();
  try {
    return f.app.routes
      .filter((r) => !(r.method === "ALL" && r.path.endsWith("*")))
      .map((r) => `${r.method} ${r.path}`);
  } finally {
    f.close();
  }
}

Deno.test("ROUTE_RULES classifies every route of the app", () => {
  const missing = appRoutes().filter((r) => {
    const [method, path] = r.split(" ") as [string, string];
    return ruleOf(method, path) === undefined;
  });
  assert.deepEqual(missing, [], "routes without a row in src/api/acl_routes.ts");
});

Deno.test("ROUTE_RULES has no row for a route the app lacks, and no row twice", () => {
  const routes = new Set(appRoutes());
  const rows = ROUTE_RULES.map((r) => `${r.method} ${r.path}`);
  assert.deepEqual(rows.filter((r) => !routes.has(r)), [], "rows matching no route");
  assert.deepEqual(rows.filter((r, i) => rows.indexOf(r) !== i), [], "rows given twice");
});

Deno.test("needOf() turns a KV read into a filtered list with ?recurse or ?keys", () => {
  const get = ruleOf("GET", "/v1/kv/*")!;
  const q = (params: Record<string, string>) => (n: string) => params[n];
  assert.deepEqual(needOf(get, q({})), {
    kind: "right",
    resource: "kv",
    access: "read",
    segment: "key",
  });
  assert.equal(needOf(get, q({ recurse: "" })).kind, "filtered");
  assert.equal(needOf(get, q({ keys: "" })).kind, "filtered");
  const del = ruleOf("DELETE", "/v1/kv/*")!;
  assert.equal((needOf(del, q({})) as { segment: string }).segment, "key");
  assert.equal((needOf(del, q({ recurse: "" })) as { segment: string }).segment, "key-tree");
});

Deno.test("ROUTE_RULES: only status, datacenters, the one-time ACL bootstrap and the dashboard page are open", () => {
  const open = ROUTE_RULES.filter((r) => needOf(r, () => undefined).kind === "open")
    .map((r) => `${r.method} ${r.path}`);
  assert.deepEqual(open, [
    "GET /v1/catalog/datacenters",
    "GET /v1/status/leader",
    "GET /v1/status/peers",
    "PUT /v1/acl/bootstrap",
    "GET /ui",
    "GET /ui/",
    "GET /",
  ]);
});
