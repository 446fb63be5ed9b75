import assert from "node:assert/strict";
import { compileRegexReplace, replaceAll } from "./regex_replace.ts";
import { CommandError } from "./rule_basics.ts";

Deno.test("compileRegexReplace(): ${N} names a group, also before a digit (Traefik's form)", () => {
  const r = compileRegexReplace("^/v(\\d)/(.*)", "/api${1}0/${2}");
  assert.equal(replaceAll(r, "/v2/items"), "/api20/items");
  assert.equal(replaceAll(compileRegexReplace("(a)", "$10"), "a"), "a0", "$10 is $1, then 0");
  assert.equal(replaceAll(compileRegexReplace("(a)", "$${1}"), "a"), "${1}", "$$ is a dollar");
  assert.throws(() => compileRegexReplace("(a)", "${2}"), /\$2 refers to no group/);
  assert.throws(() => compileRegexReplace("(a)", "${x}"), CommandError);
  assert.throws(() => compileRegexReplace("(a)", "${1"), CommandError);
});
