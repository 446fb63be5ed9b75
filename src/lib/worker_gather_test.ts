import assert from "node:assert/strict";
import { WorkerGather } from "./worker_gather.ts";

Deno.test("WorkerGather.ask() resolves with every answer once all workers answered", async () => {
  const g = new WorkerGather<string, number>();
  const sent: [string, number][] = [];
  const r = g.ask(["a", "b", "c"], (s, id) => sent.push([s, id]), 60_000);
  for (const [s, id] of sent) g.answer(id, s, s === "b" ? null : s.charCodeAt(0));
  const { got, missing } = await r;
  assert.deepEqual([...got], [["a", 97], ["c", 99]]);
  assert.deepEqual(missing, []);
});

Deno.test("WorkerGather.ask() leaves out a worker that does not answer in time", async () => {
  const g = new WorkerGather<string, number>();
  const r = g.ask(["a", "b"], (s, id) => {
    if (s === "a") g.answer(id, s, 1);
  }, 10);
  const { got, missing } = await r;
  assert.deepEqual([...got.keys()], ["a"]);
  assert.deepEqual(missing, ["b"]);
});

Deno.test("WorkerGather: a late or unknown answer is ignored; gone() ends the wait for a worker", async () => {
  const g = new WorkerGather<string, number>();
  let first = 0;
  const r = g.ask(["a", "b"], (s, id) => {
    first = id;
    if (s === "a") g.answer(id, s, 1);
  }, 60_000);
  g.answer(first + 7, "b", 5); // no such question
  g.answer(first, "a", 9); // answered already
  g.gone("b");
  const { got, missing } = await r;
  assert.deepEqual([...got], [["a", 1]]);
  assert.deepEqual(missing, []);
  assert.deepEqual((await g.ask([], () => {}, 10)).got.size, 0);
});
