import assert from "node:assert/strict";
import { LogBudget } from "./log_budget.ts";

Deno.test("LogBudget.due() fires on the entry count or on the byte budget, whichever comes first", () => {
  const b = new LogBudget({ logBytes: 1000, keepBytes: 300 });
  for (let i = 1; i <= 5; i++) b.noteApplied(i, 10);
  assert.equal(b.due(5, 0, 8), false);
  assert.equal(b.due(8, 0, 8), true);
  b.noteApplied(6, 990);
  assert.equal(b.due(6, 0, 8), true, "1040 bytes since the snapshot");
});

Deno.test("LogBudget.keepEntries() keeps at most keepMax entries and at most keepBytes", () => {
  const b = new LogBudget({ logBytes: 1000, keepBytes: 300 });
  for (let i = 1; i <= 10; i++) b.noteApplied(i, 100);
  assert.equal(b.keepEntries(10, 8), 3, "three entries of 100 bytes fit in 300");
  assert.equal(b.keepEntries(10, 2), 2);
  assert.equal(b.keepEntries(5, 8), 3, "entries after the snapshot index do not count");
  b.snapshotted(10, 7);
  assert.equal(b.due(10, 10, 100), false, "the budget starts again after a snapshot");
  b.noteApplied(11, 1000);
  assert.equal(b.due(11, 10, 100), true);
  b.snapshotted(9, 6);
  assert.equal(b.due(11, 9, 100), true, "entries after the snapshot's index still count");
});
