import assert from "node:assert/strict";
import { ContainerSettings } from "./labels.ts";
import { routeLabels } from "./route_labels.ts";

Deno.test("routeLabels() a bad balancing label: one problem with the label, the value and the fallback", () => {
  const s = new ContainerSettings("web-1", "c1", {
    Id: "c1",
    Name: "/web-1",
    Config: {
      Image: "nginx",
      Labels: {
        "berth.http.max-conns": "lots",
        "berth.http.slow-start": "30s",
        "berth.lb.hash": "cookie:a b",
      },
    },
    State: { Status: "running", Running: true },
    NetworkSettings: { Ports: { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }] } },
  });
  assert.deepEqual(routeLabels(s), { "berth.http.slow-start": "30s" });
  assert.deepEqual(s.problems.map((p) => p.message), [
    'berth.http.max-conns="lots": expected an integer in [1, 100000]; no cap of the service\'s own',
    'berth.lb.hash="cookie:a b": expected ip, header:NAME or cookie:NAME; hashing the client\'s IP',
  ]);
});
