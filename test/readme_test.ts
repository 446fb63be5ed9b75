/**
 * README.md against the code: the HTTP API section names every route the app serves, so a new
 * route cannot go undocumented.
 */
import assert from "node:assert/strict";
import { createApp } from "../src/api/mod.ts";
import { LocalCluster } from "../src/cluster/testing.ts";
import { Store } from "../src/store/mod.ts";
import { readmeSection } from "./readme.ts";

Deno.test("README's HTTP API section names every route of the API app", () => {
  const store = Store.open(":memory:");
  const app = createApp({
    store,
    cluster: new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" }),
    node: "n1",
    advertise: "127.0.0.1",
    version: "0.0.0-test",
    aclDefault: "allow",
  });
  const section = readmeSection("HTTP API and CLI");
  const missing: string[] = [];
  for (const { method, path } of app.routes) {
    if (method === "ALL" || path === "/") continue; // middleware; `/` redirects to /ui
    // `/v1/kv/*` is written `/v1/kv/:key`; `/v1/kv` (no key) and `/ui/` are covered by those.
    const written = path.replace(/\/\*$/, "/:key").replace(/(.)\/$/, "$1");
    if (!section.includes(written)) missing.push(`${method} ${path}`);
  }
  store.close();
  assert.deepEqual(missing, [], "routes not named in README's HTTP API section");
});
