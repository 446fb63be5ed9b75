import assert from "node:assert/strict";
import { deferred, Waiters } from "./_waiters.ts";

Deno.test("Waiters.until() resolves at once when the condition holds already", async () => {
  const w = new Waiters();
  await w.until(() => true, { ms: 1000, timeout: () => new Error("timeout") });
  assert.equal(w.size, 0);
});

Deno.test("Waiters.until() resolves at the first check() that finds the condition true", async () => {
  const w = new Waiters();
  let applied = 0;
  let done = false;
  const p = w.until(() => applied >= 2, { ms: 10_000, timeout: () => new Error("timeout") }).then(
    () => done = true,
  );
  applied = 1;
  w.check();
  await Promise.resolve();
  assert.equal(done, false);
  applied = 2;
  w.check();
  await p;
  assert.equal(done, true);
  assert.equal(w.size, 0);
});

Deno.test("Waiters.until() rejects with the timeout error and forgets the condition", async () => {
  const w = new Waiters();
  await assert.rejects(
    w.until(() => false, { ms: 5, timeout: () => new Error("too slow") }),
    /too slow/,
  );
  assert.equal(w.size, 0);
});

Deno.test("Waiters.failAll() rejects waiting and later conditions", async () => {
  const w = new Waiters();
  const p = w.until(() => false, { ms: 10_000, timeout: () => new Error("timeout") });
  w.failAll(new Error("closed"));
  await assert.rejects(p, /closed/);
  await assert.rejects(
    w.until(() => true, { ms: 10, timeout: () => new Error("timeout") }),
    /closed/,
  );
});

Deno.test("deferred() settles once: resolve wins over the later timeout", async () => {
  let forgotten = false;
  const d = deferred<number>(5, {
    timeout: () => new Error("timeout"),
    forget: () => forgotten = true,
  });
  d.resolve(7);
  assert.equal(await d.promise, 7);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(forgotten, false);
});
