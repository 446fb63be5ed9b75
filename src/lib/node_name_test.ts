import assert from "node:assert/strict";
import { checkNodeName, isNodeName } from "./node_name.ts";

Deno.test("isNodeName() and checkNodeName() agree on valid and invalid names", async (t) => {
  const cases: [string, RegExp | null][] = [
    ["host-a", null],
    ["Web_1.local", null],
    ["a".repeat(63), null],
    ["", /empty/],
    ["a".repeat(64), /64 characters/],
    ["-a", /starts with/],
    ["my host", /has " "/],
    ["h\u00e9", /has "\u00e9"/],
  ];
  for (const [name, why] of cases) {
    await t.step(JSON.stringify(name), () => {
      assert.equal(isNodeName(name), why === null);
      if (why === null) checkNodeName(name);
      else assert.throws(() => checkNodeName(name), why);
    });
  }
});
