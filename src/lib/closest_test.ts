import assert from "node:assert/strict";
import { closest, editDistance } from "./closest.ts";

Deno.test("editDistance() counts insertions, deletions and substitutions", () => {
  assert.equal(editDistance("", ""), 0);
  assert.equal(editDistance("abc", "abc"), 0);
  assert.equal(editDistance("abc", ""), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("BERTH_DNSTTL", "BERTH_DNS_TTL"), 1);
});

Deno.test("closest() suggests a near name case-insensitively and nothing for a far one", () => {
  const known = ["BERTH_DNS_TTL", "BERTH_DNS", "BERTH_BOOTSTRAP"];
  assert.equal(closest("BERTH_DNSTTL", known), "BERTH_DNS_TTL");
  assert.equal(closest("berth_bootstrapp", known), "BERTH_BOOTSTRAP");
  assert.equal(closest("BERTH_SOMETHING_ELSE_ENTIRELY", known), null);
  assert.equal(closest("x", []), null);
});
