import assert from "node:assert/strict";
import fc from "fast-check";
import { LABEL_SPECS } from "./labels.ts";
import { ROUTE_KEYS } from "../store/route_keys.ts";
import { validateInstance } from "../store/mod.ts";
import { container, OPTS } from "./_desired_testing.ts";
import { containerInstances } from "./desired.ts";

/** Every label berth reads (port 80 for per-port ones), route keys per port too, and an unknown. */
const KEYS = [
  ...LABEL_SPECS.flatMap((s) => s.keys).map((k) => k.replace("<port>", "80")),
  ...ROUTE_KEYS.map((k) => k.key),
  ...ROUTE_KEYS.map((k) => k.key.replace(/^berth\.(http|tcp|udp)\./, "berth.$1.80.")),
  "berth.http.request-header.X-A",
  "berth.bogus",
];

/** Values: any UTF-16 units, short printable text, and values labels take. */
const VALUE = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ maxLength: 30, unit: "binary" }),
  fc.constantFrom("true", "false", "80", "0", "65536", "1s", "a.test", "/x", "10.0.0.0/8", " "),
);

/** What breaks a line of the log or of `berth explain`: C0 control characters. */
// deno-lint-ignore no-control-regex
const LINE_BREAKING = /[\x00-\x1f]/;

Deno.test("containerInstances() on random labels: valid instances, one-line problems and skip reasons, no throw", () => {
  fc.assert(
    fc.property(fc.dictionary(fc.constantFrom(...KEYS), VALUE, { maxKeys: 6 }), (labels) => {
      const r = containerInstances(container({ labels }), OPTS);
      for (const p of r.problems) assert.doesNotMatch(p.message, LINE_BREAKING, p.message);
      for (const s of r.skipped) assert.doesNotMatch(s.reason, LINE_BREAKING, s.reason);
      for (const i of r.instances) validateInstance(structuredClone(i));
    }),
    { numRuns: 2000 },
  );
});
