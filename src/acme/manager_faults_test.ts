import assert from "node:assert/strict";
import { FakeAcmeError } from "./_testing.ts";
import { DAY, DIR, NAME, World } from "./_world_testing.ts";

Deno.test("AcmeManager registers the same account key again when the CA no longer knows the account, and stores the new URL", async () => {
  const w = new World();
  const m = w.manager("n1", () => 1);
  await w.until(m, () => w.cert() !== undefined);
  const before = w.store.acme.account(DIR)!;
  w.ca.accounts.clear(); // a CA that lost its state (pebble restarted, a purged account)
  w.names = [NAME, "two.example.com"];
  for (let i = 0; i < 10 && w.cert("two.example.com") === undefined; i++) {
    await m.pass();
    w.nowMs += DAY;
  }
  assert.ok(w.cert("two.example.com"), `not issued; log:\n${w.logs.join("\n")}`);
  assert.equal(w.ca.calls.filter((c) => c === "account").length, 2);
  const after = w.store.acme.account(DIR)!;
  assert.equal(after.keySealed, before.keySealed, "the same key");
  assert.notEqual(after.url, before.url);
  assert.equal(after.url, [...w.ca.accounts.values()][0]);
  assert.equal(w.ca.accounts.size, 1, "one account");
  assert.equal(w.store.acme.accounts().length, 1);
  assert.ok(w.logs.some((l) => l.includes("registered again")));
});

Deno.test("AcmeManager registers again on `unauthorized` for the account (deactivated), not on a failed challenge", async () => {
  const w = new World();
  const m = w.manager("n1", () => 1);
  w.ca.failNext.set("newOrder", [
    new FakeAcmeError(
      "urn:ietf:params:acme:error:unauthorized",
      'Account is not valid, has status "deactivated"',
      403,
    ),
  ]);
  await w.run(m, 1);
  assert.equal(w.store.acme.name(NAME)!.failures, 1);
  w.nowMs = w.store.acme.name(NAME)!.nextAttemptMs;
  await w.until(m, () => w.cert() !== undefined);
  assert.equal(w.ca.calls.filter((c) => c === "account").length, 2);
  // A challenge the CA refuses (`unauthorized` inside the authorization) keeps the account.
  const w2 = new World();
  const m2 = w2.manager("n1", () => 1);
  w2.ca.validator = () => "wrong";
  await w2.until(m2, () => (w2.store.acme.name(NAME)?.failures ?? 0) > 0);
  w2.ca.validator = ({ token }) => w2.answers.http01(token);
  w2.nowMs = w2.store.acme.name(NAME)!.nextAttemptMs;
  await w2.until(m2, () => w2.cert() !== undefined);
  assert.equal(w2.ca.calls.filter((c) => c === "account").length, 1);
});

Deno.test("AcmeManager drops the challenges on a failure that keeps the order (no answers through a backoff), records them again when it resumes", async () => {
  const w = new World();
  const m = w.manager("n1", () => 1);
  // The CA fails getOrder once while the challenge is published but not yet answered.
  w.ca.validateOnRespond = false;
  await w.until(m, () => (w.store.acme.name(NAME)?.challenges.length ?? 0) > 0);
  w.ca.failNext.set("getOrder", [
    new FakeAcmeError("urn:ietf:params:acme:error:serverInternal", "try later", 503, 3_600_000),
  ]);
  await w.until(m, () => (w.store.acme.name(NAME)?.failures ?? 0) > 0);
  const row = w.store.acme.name(NAME)!;
  assert.notEqual(row.order, null, "the order is kept");
  assert.deepEqual(row.challenges, []);
  assert.deepEqual(w.store.acme.challenges(), [], "nothing published through the backoff");
  w.nowMs = row.nextAttemptMs;
  w.ca.validateOnRespond = true;
  await w.until(m, () => w.cert() !== undefined);
  assert.equal(w.ca.orders.size, 1, "the same order resumed");
});

Deno.test("AcmeManager drops the challenges once the CA validated them (ready), and keeps none through a finalize failure", async () => {
  const w = new World();
  const m = w.manager("n1", () => 1);
  w.ca.failNext.set("finalize", [
    new FakeAcmeError("urn:ietf:params:acme:error:rateLimited", "too many", 429, 3 * 3_600_000),
  ]);
  await w.until(m, () => (w.store.acme.name(NAME)?.failures ?? 0) > 0);
  assert.deepEqual(w.store.acme.challenges(), []);
  assert.notEqual(w.store.acme.name(NAME)!.order, null);
  // Without a failure: the finalize step drops them too.
  const w2 = new World();
  const m2 = w2.manager("n1", () => 1);
  w2.ca.finalizeStatus = "processing";
  await w2.until(m2, () => w2.store.acme.name(NAME)?.order?.status === "processing");
  assert.deepEqual(w2.store.acme.challenges(), []);
});

Deno.test("AcmeManager waits for the CA's Retry-After before looking at a processing order or a pending authorization again", async () => {
  for (const stage of ["processing", "pending"] as const) {
    const w = new World();
    const m = w.manager("n1", () => 1);
    if (stage === "processing") w.ca.finalizeStatus = "processing";
    else w.ca.validateOnRespond = false;
    await w.until(
      m,
      () =>
        stage === "processing"
          ? w.store.acme.name(NAME)?.order?.status === "processing"
          : w.ca.calls.includes("respond"),
    );
    w.ca.retryAfterMs = 120_000;
    await w.run(m, 2); // a look that brings the Retry-After
    const looks = () => w.ca.calls.filter((c) => c === "getOrder").length;
    const before = looks();
    await w.run(m, 100, 1000); // 100 s: within the CA's 120 s
    assert.equal(looks() - before, 0, `${stage}: looks within Retry-After`);
    await w.run(m, 60, 1000); // past it: looked at again
    assert.ok(looks() - before >= 1, `${stage}: looked at again after Retry-After`);
  }
});
