import assert from "node:assert/strict";
import { FakeAcmeError } from "./_testing.ts";
import { BACKOFF_MIN_MS } from "./timing.ts";
import { EDGE_CONTACT_MAX_MS } from "./edge_contact.ts";
import { DAY, DIR, NAME, World } from "./_world_testing.ts";
import { waitFor } from "../../test/wait.ts";

Deno.test("AcmeManager orders a missing certificate: one account, one order, challenge answered from the replicated tables", async () => {
  const w = new World();
  const m = w.manager("n1", () => 1);
  await w.until(m, () => w.cert() !== undefined);
  const cert = w.cert()!;
  assert.equal(cert.source, "acme");
  assert.deepEqual(cert.names, [NAME]);
  assert.equal(w.ca.accounts.size, 1);
  assert.equal(w.ca.orders.size, 1);
  assert.equal(w.ca.issued.length, 1);
  assert.equal(w.store.acme.name(NAME), undefined, "the row goes with the certificate");
  assert.deepEqual(w.store.acme.challenges(), []);
  assert.equal(w.store.acme.account(DIR)?.url, [...w.ca.accounts.values()][0]);
  assert.ok(w.logs.some((l) => l === `follower: acme: answered the HTTP-01 challenge for ${NAME}`));
  // The challenge was recorded before the CA was told to validate it.
  const recorded = w.results.findIndex((r) =>
    r.cmd.type === "acme.name.set" && r.cmd.state.challenges.length > 0
  );
  assert.ok(recorded >= 0);
  assert.ok(w.ca.calls.includes("respond"));
  // Fresh certificate: more passes order nothing.
  const orders = w.ca.orders.size;
  await w.run(m, 10, 60_000);
  assert.equal(w.ca.orders.size, orders);
});

Deno.test("AcmeManager never orders a name no service asks for, and forgets a name that stops asking", async () => {
  const w = new World();
  w.names = [];
  const m = w.manager("n1", () => 1);
  await w.run(m, 5);
  assert.equal(w.ca.orders.size, 0);
  assert.ok(!w.ca.calls.includes("newOrder"));
  assert.deepEqual(w.results, [], "nothing asked: no lease claimed, nothing written");
  w.names = [NAME];
  w.ca.finalizeStatus = "processing"; // hold the order in flight
  await w.until(m, () => w.store.acme.name(NAME)?.order?.status === "processing");
  w.names = [];
  await w.run(m, 1);
  assert.equal(w.store.acme.name(NAME), undefined);
  assert.ok(w.logs.some((l) => l.includes(`${NAME} is no longer routed`)));
  await w.run(m, 5);
  assert.equal(w.ca.orders.size, 1);
});

/** The states a leader can die in, and how to get the first leader there. */
const STATES: [string, (w: World) => boolean, (w: World) => void][] = [
  [
    "order recorded, no challenge yet",
    (w) => w.store.acme.name(NAME)?.order !== null && w.store.acme.name(NAME) !== undefined,
    () => {},
  ],
  [
    "challenge recorded, not answered",
    (w) => (w.store.acme.name(NAME)?.challenges.length ?? 0) > 0,
    () => {},
  ],
  ["challenge answered, CA validating", (w) => w.ca.calls.includes("respond"), (w) => {
    w.ca.validateOnRespond = false;
  }],
  ["ready (validated, not finalized)", (w) => {
    if (w.ca.calls.includes("respond")) w.ca.validate();
    return w.ca.ordersOf(NAME)[0]?.status === "ready";
  }, (w) => {
    w.ca.validateOnRespond = false;
  }],
  ["processing (finalized)", (w) => w.ca.ordersOf(NAME)[0]?.status === "processing", (w) => {
    w.ca.finalizeStatus = "processing";
  }],
  ["valid (issued, not downloaded)", (w) => w.ca.ordersOf(NAME)[0]?.status === "valid", () => {}],
];

Deno.test("AcmeManager: a new leader resumes the same order in every state; one account, one order, one certificate", async (t) => {
  for (const [what, reached, setup] of STATES) {
    await t.step(what, async () => {
      const w = new World();
      setup(w);
      let leader = "n1";
      let term = 1;
      const a = w.manager("n1", () => leader === "n1" ? term : null);
      const b = w.manager("n2", () => leader === "n2" ? term : null);
      await w.until(a, () => reached(w));
      // The leader dies; n2 leads in the next term and the CA goes on.
      leader = "n2";
      term = 2;
      w.ca.validateOnRespond = true;
      w.ca.finalizeStatus = "valid";
      w.ca.validate();
      for (const o of w.ca.orders.values()) if (o.status === "processing") w.ca.issue(o.url);
      await w.run(a, 3); // the deposed leader's loop does nothing
      await w.until(b, () => w.cert() !== undefined);
      assert.equal(w.ca.accounts.size, 1, "one account");
      assert.equal(w.ca.orders.size, 1, "the same order resumed");
      assert.equal(w.ca.issued.length, 1, "one certificate");
      assert.equal(w.store.acme.lease()?.node, "n2");
      assert.ok(
        w.results.filter((r) => r.node === "n1").every((r) =>
          r.cmd.type === "acme.claim" || (r.cmd.type !== "batch")
        ),
      );
    });
  }
});

Deno.test("AcmeManager: a deposed leader's late write is refused; the new leader's order stands", async () => {
  const w = new World();
  let aTerm: number | null = 1;
  const a = w.manager("n1", () => aTerm);
  const b = w.manager("n2", () => 2);
  // n1 claims, makes the account, then stalls inside newOrder (a slow CA, a paused process).
  let release!: () => void;
  w.ca.holdNext.set("newOrder", new Promise<void>((r) => release = r));
  const stalled = a.pass();
  // Until n1 is inside newOrder: else n2 may call it first and take the hold meant for n1.
  await waitFor("n1 inside newOrder", () => w.ca.calls.includes("newOrder"), { intervalMs: 1 });
  // Meanwhile n2 leads in term 2 and records its own order.
  await w.until(
    b,
    () => w.store.acme.name(NAME)?.order !== null && w.store.acme.name(NAME) !== undefined,
  );
  const bOrder = w.store.acme.name(NAME)!.order!.url;
  // n1 still believes it leads in term 1: its order comes back and it tries to record it.
  release();
  await stalled;
  const late = w.results.filter((r) => r.node === "n1" && r.cmd.type === "acme.name.set");
  assert.equal(late.length, 1);
  assert.equal(late[0]!.ok, false);
  assert.match(late[0]!.error!, /term 1 does not hold the lease \(term 2, n2\)/);
  assert.equal(w.store.acme.name(NAME)!.order!.url, bOrder);
  aTerm = null;
  await w.until(b, () => w.cert() !== undefined);
  assert.equal(w.ca.issued.length, 1);
  assert.equal(w.ca.accounts.size, 1);
});

Deno.test("AcmeManager backs off 1 min doubling on failures, honours Retry-After, keeps the CA's error text", async () => {
  const w = new World();
  const m = w.manager("n1", () => 1);
  const limited = new FakeAcmeError(
    "urn:ietf:params:acme:error:rateLimited",
    "too many new orders recently",
    429,
    3_600_000,
  );
  w.ca.failNext.set("newOrder", [
    limited,
    new Error("connection refused"),
    new Error("connection refused"),
  ]);
  const t0 = w.nowMs;
  await w.run(m, 1, 0);
  let row = w.store.acme.name(NAME)!;
  assert.equal(row.failures, 1);
  assert.equal(row.nextAttemptMs, t0 + 3_600_000);
  assert.equal(row.lastError, `${NAME}: rateLimited: too many new orders recently`);
  assert.equal(row.order, null);
  // Nothing is tried before the next attempt.
  const calls = w.ca.calls.length;
  await w.run(m, 30, 60_000);
  assert.equal(w.ca.calls.length, calls);
  w.nowMs = t0 + 3_600_000;
  await w.run(m, 1, 0);
  row = w.store.acme.name(NAME)!;
  assert.equal(row.failures, 2);
  assert.equal(row.nextAttemptMs, w.nowMs + 2 * BACKOFF_MIN_MS);
  assert.equal(row.lastError, `${NAME}: connection refused`);
  w.nowMs = row.nextAttemptMs;
  await w.run(m, 1, 0);
  assert.equal(w.store.acme.name(NAME)!.nextAttemptMs, w.nowMs + 4 * BACKOFF_MIN_MS);
  w.nowMs += 4 * BACKOFF_MIN_MS;
  await w.until(m, () => w.cert() !== undefined);
  assert.equal(w.ca.issued.length, 1);
});

Deno.test("AcmeManager: an invalid challenge fails the order with the CA's reason; the next attempt orders anew", async () => {
  const w = new World();
  const m = w.manager("n1", () => 1);
  w.ca.validator = () => "wrong";
  await w.until(m, () => (w.store.acme.name(NAME)?.failures ?? 0) > 0);
  const row = w.store.acme.name(NAME)!;
  assert.equal(row.order, null);
  assert.deepEqual(row.challenges, []);
  assert.match(
    row.lastError,
    /unauthorized: the key authorization served for web\.example\.com is "wrong"/,
  );
  w.ca.validator = ({ token }) => w.answers.http01(token);
  w.nowMs = row.nextAttemptMs;
  await w.until(m, () => w.cert() !== undefined);
  assert.equal(w.ca.orders.size, 2);
  assert.equal(w.ca.issued.length, 1);
});

Deno.test("AcmeManager renews at two-thirds of the lifetime, and at once when asked (acme.renew)", async () => {
  const w = new World();
  const m = w.manager("n1", () => 1);
  await w.until(m, () => w.cert() !== undefined);
  const first = w.cert()!;
  w.nowMs = first.notBefore + 59 * DAY;
  await w.run(m, 5);
  assert.equal(w.ca.issued.length, 1, "not before two-thirds of 90 days");
  w.nowMs = first.notBefore + 61 * DAY;
  await w.until(m, () => w.cert()!.fingerprint !== first.fingerprint);
  assert.equal(w.ca.issued.length, 2);
  const second = w.cert()!;
  w.store.apply(++w.index, { type: "acme.renew", name: NAME, nowMs: w.nowMs });
  await w.until(m, () => w.cert()!.fingerprint !== second.fingerprint);
  assert.equal(w.ca.issued.length, 3);
  assert.equal(w.store.acme.name(NAME), undefined);
});

Deno.test("AcmeManager leaves a name covered by a manual certificate alone", async () => {
  const w = new World();
  const { testEdgeCert } = await import("../pki/testing.ts");
  const { sealEdgeCert } = await import("../pki/edge_cert.ts");
  const t = testEdgeCert(["*.example.com"]);
  const cert = sealEdgeCert(w.box, {
    name: "wild",
    certPem: t.certPem,
    keyPem: t.keyPem,
    source: "manual",
    isDefault: false,
    nowMs: Date.now(),
  });
  w.store.apply(++w.index, { type: "cert.put", cert });
  w.nowMs = Date.now();
  const m = w.manager("n1", () => 1);
  await w.run(m, 5);
  assert.equal(w.ca.orders.size, 0);
});

Deno.test("AcmeManager answers no challenge while a member the CA may reach is silent, nor in its first seconds as leader", async () => {
  const w = new World();
  const m = w.manager("n1", () => 1);
  w.silence = "m2 was last heard 7s ago";
  await w.until(m, () => (w.store.acme.name(NAME)?.challenges.length ?? 0) > 0);
  const writes = w.results.length;
  await w.run(m, 20);
  assert.ok(!w.ca.calls.includes("respond"), "no answer while m2 is silent");
  assert.equal(w.results.length, writes, "nothing written while the order waits");
  assert.equal(
    w.logs.filter((l) => l.includes("the challenge waits: m2 was last heard 7s ago")).length,
    1,
  );
  w.silence = null;
  // Held answers are looked at again after POLL_MIN_MS, not the grown delay of a waiting order.
  await w.run(m, 2);
  assert.ok(w.ca.calls.includes("respond"), "answered within two passes of the member heard");
  await w.until(m, () => w.cert() !== undefined);
  // A new leader holds its answers for EDGE_CONTACT_MAX_MS (its view of who is silent is
  // not yet true), then answers.
  const w2 = new World();
  const m2 = w2.manager("n1", () => 1);
  const t0 = w2.nowMs;
  let answeredAt = 0;
  for (let i = 0; i < 20 && answeredAt === 0; i++) {
    const at = w2.nowMs;
    await w2.run(m2, 1);
    if (w2.ca.calls.includes("respond")) answeredAt = at;
  }
  assert.ok(
    answeredAt - t0 >= EDGE_CONTACT_MAX_MS,
    `answered ${answeredAt - t0} ms after the claim`,
  );
  assert.ok(answeredAt - t0 < EDGE_CONTACT_MAX_MS + 3000);
});
