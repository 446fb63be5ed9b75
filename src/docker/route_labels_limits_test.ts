import assert from "node:assert/strict";
import type { ContainerInfo } from "./container.ts";
import { ContainerSettings } from "./labels.ts";
import { routeLabels } from "./route_labels.ts";

function settings(labels: Record<string, string>): ContainerSettings {
  const c: ContainerInfo = {
    Id: "c1",
    Name: "/web-1",
    Config: { Image: "nginx", Labels: labels },
    State: { Status: "running", Running: true },
  };
  return new ContainerSettings("web-1", "c1", c);
}

Deno.test("routeLabels() reads berth.http.ratelimit and berth.http.compress as canonical text", () => {
  const s = settings({ "berth.http.ratelimit": "1/m, burst=5", "berth.http.compress": "GZIP" });
  assert.deepEqual(routeLabels(s), {
    "berth.http.compress": "gzip",
    "berth.http.ratelimit": "1/m,burst=5",
  });
  assert.deepEqual(s.problems, []);
});

Deno.test("routeLabels() a bad ratelimit or compress label: one problem each, left out", () => {
  const s = settings({
    "berth.http.ratelimit": "100 per second",
    "berth.http.compress": "zstd",
    "berth.http.host": "web.local",
  });
  assert.deepEqual(routeLabels(s), {});
  assert.deepEqual(s.problems.map((p) => p.message), [
    'berth.http.compress="zstd": expected true, false, or a list of gzip and br (e.g. gzip,br); ' +
    "no compression",
    'berth.http.ratelimit="100 per second": expected RATE/s or RATE/m, optionally ,burst=N ' +
    "(e.g. 100/s,burst=200); no rate limit",
  ]);
  const zero = settings({ "berth.http.ratelimit": "0/s" });
  routeLabels(zero);
  assert.match(zero.problems[0]!.message, /expected a rate in \[1, 1000000\]/);
});
