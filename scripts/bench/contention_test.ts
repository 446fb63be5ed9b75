import assert from "node:assert/strict";
import { parseDnsperfVerbose } from "./contention.ts";

Deno.test("parseDnsperfVerbose() takes each answer's latency in ms; timeouts and errors are lost", () => {
  const out = [
    "[Status] Sending queries (to 127.0.0.1:5353)",
    "> NOERROR web.service.berth A 0.000298",
    "> T web.service.berth A",
    "> REFUSED web.service.berth A 0.000242",
    "> NOERROR web.service.berth A 0.0125",
    "  Queries sent:         4",
  ].join("\n");
  assert.deepEqual(parseDnsperfVerbose(out), { latenciesMs: [0.298, 12.5], lost: 2 });
});
