/**
 * scripts/consul_endpoints.ts against the API app: the endpoints it calls answered are exactly
 * the ones the app serves (asked through the app itself), every Consul route the app serves is
 * in its list, and README carries its summary, so neither the list nor the README can drift.
 */
import assert from "node:assert/strict";
import {
  buildApp,
  CONSUL_ENDPOINTS,
  consulRoutesOf,
  coverage,
  renderSummary,
  routesFor,
  samplePaths,
} from "../scripts/consul_endpoints.ts";
import { readmeSection } from "./readme.ts";

/** Whether the app's own "no route" / "method not allowed" answer came back (see app.ts). */
async function unrouted(r: Response): Promise<boolean> {
  const text = await r.text();
  return (r.status === 404 && text.startsWith("no route for ")) ||
    (r.status === 405 && text.startsWith("method "));
}

Deno.test("consul_endpoints: an endpoint counted as answered is served by the app, the others get its no-route answer", async () => {
  const { app, close } = buildApp();
  try {
    const wrong: string[] = [];
    for (const { endpoint: e, answered } of coverage(app)) {
      for (const path of samplePaths(e)) {
        const r = await app.request(path, {
          method: e.method,
          body: e.method === "GET" || e.method === "DELETE" ? undefined : "{}",
        });
        if (await unrouted(r) === answered) {
          wrong.push(`${e.method} ${path}: counted ${answered ? "answered" : "not answered"}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  } finally {
    close();
  }
});

Deno.test("consul_endpoints: every Consul route the app serves is in the list (berth's own /v1/berth left out)", () => {
  const { app, close } = buildApp();
  try {
    const routes = consulRoutesOf(app);
    assert.ok(routes.length > 0);
    const unlisted = routes.filter((r) =>
      !CONSUL_ENDPOINTS.some((e) => routesFor([r], e).length > 0)
    ).map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(unlisted, [], "routes the app serves that the Consul list lacks");
  } finally {
    close();
  }
});

Deno.test("consul_endpoints: README's HTTP API section carries the script's summary", () => {
  const { app, close } = buildApp();
  try {
    // deno fmt may re-pad the table and re-wrap the sentence: compare with runs of white space
    // as one space.
    const squeeze = (s: string) => s.replace(/\s+/g, " ").trim();
    assert.ok(
      squeeze(readmeSection("HTTP API and CLI")).includes(squeeze(renderSummary(app))),
      `README "HTTP API and CLI" should hold the output of deno task consul-endpoints ` +
        `--summary:\n${renderSummary(app)}`,
    );
  } finally {
    close();
  }
});
