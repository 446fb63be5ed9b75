import assert from "node:assert/strict";
import { parseDatacenter, parseServiceTtls } from "./dns_flags.ts";

Deno.test("parseDatacenter() accepts one lower-case DNS label", () => {
  assert.equal(parseDatacenter("dc1"), "dc1");
  assert.equal(parseDatacenter("us-east_1"), "us-east_1");
});

Deno.test("parseDatacenter() says what is wrong with a bad name", async (t) => {
  const cases: [string, string][] = [
    ["", "empty"],
    ["DC1", `has "D"`],
    ["dc.1", `has "."`],
    ["-dc", "starts with a character other than a letter or digit"],
    ["x".repeat(64), "64 characters, more than 63"],
    ["service", `"service" is a label of berth's DNS names`],
    ["node", `"node" is a label of berth's DNS names`],
  ];
  for (const [text, message] of cases) {
    await t.step(JSON.stringify(text), () => {
      assert.throws(() => parseDatacenter(text), { message });
    });
  }
});

Deno.test("parseServiceTtls() reads NAME=D items, * included, into lower-cased seconds", () => {
  assert.deepEqual(
    [...parseServiceTtls("web=30s, DB=1m ,*=5s,,")],
    [["web", 30], ["db", 60], ["*", 5]],
  );
  assert.deepEqual([...parseServiceTtls("")], []);
  assert.deepEqual([...parseServiceTtls("web=0s")], [["web", 0]]);
});

Deno.test("parseServiceTtls() says which item is wrong and how", async (t) => {
  const cases: [string, string][] = [
    ["web", `"web" has no '=' between a service name and a TTL`],
    ["=5s", `"" is neither * nor a service name (letters, digits, - or _)`],
    ["a.b=5s", `"a.b" is neither * nor a service name (letters, digits, - or _)`],
    ["web=5", "web=5: no unit"],
    ["web=abc", "web=abc: not a duration"],
    ["web=1500ms", "web=1500ms: not whole seconds"],
    ["web=25h", "web=25h: more than 86400s"],
    ["web=1s,WEB=2s", "WEB is given twice"],
  ];
  for (const [text, message] of cases) {
    await t.step(text, () => assert.throws(() => parseServiceTtls(text), { message }));
  }
});
