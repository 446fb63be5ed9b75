import assert from "node:assert/strict";
import { parseExposition, valueOf } from "../lib/_prom_parse.ts";
import { fixture, instanceSpec } from "./_testing.ts";
import { INSTANCE_SERIES_MAX } from "./metrics.ts";

Deno.test("GET /metrics is valid exposition text, extraMetrics (async) appended", async () => {
  const extra = "# TYPE berth_dns_queries_total counter\nberth_dns_queries_total 7\n";
  const f = fixture({ extraMetrics: () => Promise.resolve(extra) });
  try {
    await f.cluster.propose({ type: "register", instance: instanceSpec() });
    const e = parseExposition(await (await f.app.request("/metrics")).text());
    assert.equal(e.types.get("berth_instance_health"), "gauge");
    assert.equal(valueOf(e, "berth_dns_queries_total"), 7);
    assert.equal(valueOf(e, "berth_applied_index"), 1);
  } finally {
    f.close();
  }
});

Deno.test("GET /metrics says when extraMetrics failed, in a comment line", async () => {
  const f = fixture({ extraMetrics: () => Promise.reject(new Error("no workers")) });
  try {
    const e = parseExposition(await (await f.app.request("/metrics")).text());
    assert.deepEqual(e.comments, ["# extraMetrics failed: no workers"]);
  } finally {
    f.close();
  }
});

Deno.test("GET /metrics lists each instance's health by service and id", async () => {
  const f = fixture();
  try {
    await f.cluster.propose({ type: "register", instance: instanceSpec({ id: "a" }) });
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({ id: "b", docker: { state: "paused", detail: "" } }),
    });
    const e = parseExposition(await (await f.app.request("/metrics")).text());
    const rows = e.samples.filter((s) => s.name === "berth_instance_health");
    assert.deepEqual(rows.map((s) => [s.labels.instance, s.labels.status, s.value]), [
      ["a", "passing", 1],
      ["b", "critical", 1],
    ]);
    assert.equal(rows[0]!.labels.service, instanceSpec().service);
  } finally {
    f.close();
  }
});

Deno.test("GET /metrics names at most INSTANCE_SERIES_MAX instances, the rest per status under _other", async () => {
  const f = fixture();
  try {
    const n = INSTANCE_SERIES_MAX + 3;
    for (let i = 0; i < n; i++) {
      const id = `i${String(i).padStart(5, "0")}`;
      const r = f.store.apply(i + 1, { type: "register", instance: instanceSpec({ id }) });
      assert.ok(r.ok);
    }
    const e = parseExposition(await (await f.app.request("/metrics")).text());
    const rows = e.samples.filter((s) => s.name === "berth_instance_health");
    assert.equal(rows.length, INSTANCE_SERIES_MAX + 1);
    assert.equal(
      valueOf(e, "berth_instance_health", { service: "<other>", instance: "<other>" }),
      3,
    );
    assert.equal(valueOf(e, "berth_instance_health"), n);
  } finally {
    f.close();
  }
});
