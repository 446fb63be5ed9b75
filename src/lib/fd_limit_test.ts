import assert from "node:assert/strict";
import { openFileLimit, parseProcLimits, raiseOpenFileLimit } from "./fd_limit.ts";

Deno.test("parseProcLimits reads the soft and hard open-file limits; unlimited is the largest number", () => {
  const text = "Limit                     Soft Limit           Hard Limit           Units     \n" +
    "Max processes             63488                63488                processes \n" +
    "Max open files            1024                 524288               files     \n";
  assert.deepEqual(parseProcLimits(text), { soft: 1024, hard: 524288 });
  assert.deepEqual(
    parseProcLimits("Max open files            unlimited            unlimited            files"),
    { soft: Number.MAX_SAFE_INTEGER, hard: Number.MAX_SAFE_INTEGER },
  );
  assert.equal(parseProcLimits("Max processes 1 1"), null);
});

Deno.test("raiseOpenFileLimit sets the soft limit to the hard one (seen by openFileLimit)", () => {
  const r = raiseOpenFileLimit();
  assert.ok(!("why" in r), "why" in r ? r.why : "");
  assert.equal(r.soft, r.hard);
  assert.deepEqual(openFileLimit(), r);
});
