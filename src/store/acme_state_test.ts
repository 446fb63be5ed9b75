import assert from "node:assert/strict";
import { type AcmeCommand, type AcmeNameSpec, type Change, Store, validateCommand } from "./mod.ts";

const DIR = "https://ca.test/dir";
const TOKEN = "tok_" + "a".repeat(28);
const THUMB = "t".repeat(43);

function nameSpec(over: Partial<AcmeNameSpec> = {}): AcmeNameSpec {
  return {
    name: "web.example.com",
    directory: DIR,
    order: {
      url: "https://ca.test/order/1",
      status: "pending",
      expiresMs: 9_000_000,
      keySealed: "c2VhbGVk",
    },
    challenges: [{ type: "http-01", token: TOKEN, keyAuthorization: `${TOKEN}.${THUMB}` }],
    failures: 0,
    nextAttemptMs: 0,
    lastError: "",
    lastErrorMs: 0,
    renew: false,
    ...over,
  };
}

/** A store and a function applying commands at the next index, returning their results. */
function store() {
  const s = Store.open(":memory:");
  let index = 0;
  const changes: Change[] = [];
  s.subscribe((c) => changes.push(c));
  const run = (cmd: AcmeCommand) => s.apply(++index, cmd);
  return { s, run, changes, index: () => index };
}

const claim = (term: number, node = "n1"): AcmeCommand => ({
  type: "acme.claim",
  term,
  node,
  nowMs: 1000,
});
const set = (term: number, expectIndex: number, over: Partial<AcmeNameSpec> = {}): AcmeCommand => ({
  type: "acme.name.set",
  term,
  expectIndex,
  state: nameSpec(over),
});

Deno.test("acme.claim takes the lease at or above its term, never below", () => {
  const { s, run } = store();
  assert.equal(s.acme.lease(), undefined);
  assert.deepEqual(run(claim(3)), { ok: true });
  assert.deepEqual(s.acme.lease(), { term: 3, node: "n1", sinceMs: 1000 });
  assert.equal(run(claim(2, "n2")).ok, false);
  assert.equal(s.acme.lease()?.node, "n1");
  assert.deepEqual(run(claim(5, "n2")), { ok: true });
  assert.equal(s.acme.lease()?.term, 5);
});

Deno.test("acme leader writes are refused without a lease and from a deposed leader's term", () => {
  const { s, run } = store();
  const r0 = run(set(1, 0));
  assert.equal(r0.ok, false);
  assert.match(r0.error!, /no lease/);
  run(claim(1, "old"));
  assert.deepEqual(run(set(1, 0)), { ok: true });
  const written = s.acme.name("web.example.com")!;
  run(claim(2, "new"));
  // The old leader's late write, with the index it read: refused, nothing changes.
  const late = run(set(1, written.modifyIndex, { failures: 7 }));
  assert.equal(late.ok, false);
  assert.match(late.error!, /term 1 does not hold the lease \(term 2, new\)/);
  const late2 = run({
    type: "acme.name.drop",
    term: 1,
    expectIndex: written.modifyIndex,
    name: "web.example.com",
  });
  assert.equal(late2.ok, false);
  assert.deepEqual(s.acme.name("web.example.com"), written);
  // The new leader's write goes through.
  assert.deepEqual(run(set(2, written.modifyIndex, { failures: 1 })), { ok: true });
  assert.equal(s.acme.name("web.example.com")?.failures, 1);
});

Deno.test("acme.account.create: the first key for a directory wins; the URL is set on it", () => {
  const { s, run } = store();
  run(claim(1));
  const create = (keySealed: string): AcmeCommand => ({
    type: "acme.account.create",
    term: 1,
    account: { directory: DIR, email: "ops@example.com", keySealed, createdMs: 5 },
  });
  assert.deepEqual(run(create("Zmlyc3Q=")), { ok: true });
  const second = run(create("c2Vjb25k"));
  assert.equal(second.ok, false);
  assert.match(second.error!, /has an account/);
  assert.equal(s.acme.account(DIR)?.keySealed, "Zmlyc3Q=");
  assert.equal(s.acme.account(DIR)?.url, null);
  const url = "https://ca.test/acct/1";
  assert.deepEqual(run({ type: "acme.account.url", term: 1, directory: DIR, url }), { ok: true });
  assert.equal(s.acme.account(DIR)?.url, url);
  const other = run({ type: "acme.account.url", term: 1, directory: "https://x.test/d", url });
  assert.equal(other.ok, false);
});

Deno.test("acme.name.set is refused when the row changed since it was read: one order per name", () => {
  const { s, run } = store();
  run(claim(1));
  assert.deepEqual(run(set(1, 0)), { ok: true });
  const first = s.acme.name("web.example.com")!;
  assert.equal(first.createIndex, first.modifyIndex);
  // A second "create" (expectIndex 0) of the same name: refused, the first order stays.
  const dup = run(set(1, 0, { order: { ...nameSpec().order!, url: "https://ca.test/order/2" } }));
  assert.equal(dup.ok, false);
  assert.match(dup.error!, /changed at index/);
  assert.equal(s.acme.name("web.example.com")?.order?.url, "https://ca.test/order/1");
  assert.deepEqual(
    run(set(1, first.modifyIndex, { order: { ...nameSpec().order!, status: "ready" } })),
    { ok: true },
  );
  const now = s.acme.name("web.example.com")!;
  assert.equal(now.order?.status, "ready");
  assert.equal(now.createIndex, first.createIndex);
  assert.ok(now.modifyIndex > first.modifyIndex);
});

Deno.test("acme challenges: answered by token (HTTP-01), replaced with their row, dropped with it", () => {
  const { s, run } = store();
  run(claim(1));
  run(set(1, 0));
  assert.equal(s.acme.keyAuthorization(TOKEN), `${TOKEN}.${THUMB}`);
  assert.equal(s.acme.keyAuthorization("unknown-token-xxxxxxx"), null);
  const t2 = "tok2" + "b".repeat(28);
  const at = s.acme.name("web.example.com")!.modifyIndex;
  run(
    set(1, at, {
      challenges: [{ type: "tls-alpn-01", token: t2, keyAuthorization: `${t2}.${THUMB}` }],
    }),
  );
  assert.equal(s.acme.keyAuthorization(TOKEN), null);
  assert.equal(s.acme.keyAuthorization(t2), null, "a TLS-ALPN-01 token is no HTTP-01 answer");
  assert.deepEqual(s.acme.challenges(), [{
    name: "web.example.com",
    type: "tls-alpn-01",
    token: t2,
    keyAuthorization: `${t2}.${THUMB}`,
  }]);
  // Another name cannot take a token in use.
  const clash = run(set(1, 0, {
    name: "api.example.com",
    challenges: [{ type: "http-01", token: t2, keyAuthorization: `${t2}.${THUMB}` }],
  }));
  assert.equal(clash.ok, false);
  const at2 = s.acme.name("web.example.com")!.modifyIndex;
  assert.deepEqual(
    run({ type: "acme.name.drop", term: 1, expectIndex: at2, name: "web.example.com" }),
    { ok: true },
  );
  assert.equal(s.acme.name("web.example.com"), undefined);
  assert.deepEqual(s.acme.challenges(), []);
});

Deno.test("acme.renew asks for a new order now and forgives failures, with or without a row", () => {
  const { s, run } = store();
  assert.deepEqual(run({ type: "acme.renew", name: "web.example.com", nowMs: 777 }), { ok: true });
  const fresh = s.acme.name("web.example.com")!;
  assert.equal(fresh.renew, true);
  assert.equal(fresh.order, null);
  assert.equal(fresh.nextAttemptMs, 777);
  run(claim(1));
  run(set(1, fresh.modifyIndex, { failures: 4, nextAttemptMs: 99_999, lastError: "rateLimited" }));
  run({ type: "acme.renew", name: "web.example.com", nowMs: 800 });
  const again = s.acme.name("web.example.com")!;
  assert.deepEqual([again.failures, again.nextAttemptMs, again.renew, again.lastError], [
    0,
    800,
    true,
    "rateLimited",
  ]);
  assert.equal(again.order?.url, "https://ca.test/order/1", "the order in flight stays");
});

Deno.test("acme changes are announced as table acme", () => {
  const { run, changes } = store();
  run(claim(1));
  run(set(1, 0));
  assert.ok(changes.every((c) => c.tables.has("acme")));
  assert.equal(changes.length, 2);
  run(set(9, 0)); // refused: no change announced for a table
  assert.equal(changes.at(-1)!.tables.has("acme"), false);
});

Deno.test("validateCommand() ACME commands: bad fields refused with the field named, keys never quoted", async (t) => {
  const good = set(1, 0);
  const cases: [string, unknown, RegExp][] = [
    ["name", { ...good, state: nameSpec({ name: "*.example.com" }) }, /state\.name/],
    ["single label", { ...good, state: nameSpec({ name: "localhost" }) }, /state\.name/],
    [
      "order url",
      { ...good, state: nameSpec({ order: { ...nameSpec().order!, url: "ftp://x" } }) },
      /order\.url/,
    ],
    ["status", {
      ...good,
      state: nameSpec({ order: { ...nameSpec().order!, status: "done" as never } }),
    }, /order\.status/],
    ["sealed", {
      ...good,
      state: nameSpec({
        order: { ...nameSpec().order!, keySealed: "-----BEGIN PRIVATE KEY-----\nx" },
      }),
    }, /^command\.state\.order\.keySealed: expected a sealed key$/],
    ["token", {
      ...good,
      state: nameSpec({
        challenges: [{ type: "http-01", token: "../x", keyAuthorization: `../x.${THUMB}` }],
      }),
    }, /challenges\[0\]\.token/],
    ["key auth of another token", {
      ...good,
      state: nameSpec({
        challenges: [{
          type: "http-01",
          token: TOKEN,
          keyAuthorization: `${"z".repeat(20)}.${THUMB}`,
        }],
      }),
    }, /keyAuthorization/],
    ["challenge type", {
      ...good,
      state: nameSpec({
        challenges: [{
          type: "dns-01" as never,
          token: TOKEN,
          keyAuthorization: `${TOKEN}.${THUMB}`,
        }],
      }),
    }, /challenges\[0\]\.type/],
    ["error text", { ...good, state: nameSpec({ lastError: "x".repeat(2000) }) }, /lastError/],
    ["term 0", { ...good, term: 0 }, /command\.term/],
    ["expectIndex", { ...good, expectIndex: -1 }, /expectIndex/],
    ["email", {
      type: "acme.account.create",
      term: 1,
      account: { directory: DIR, email: "not an email", keySealed: "eA==", createdMs: 0 },
    }, /email/],
    ["claim node", { type: "acme.claim", term: 1, node: "", nowMs: 0 }, /node/],
  ];
  for (const [what, cmd, re] of cases) {
    await t.step(what, () => {
      assert.throws(
        () => validateCommand(cmd),
        (e: Error) => e.name === "CommandError" && re.test(e.message),
      );
    });
  }
  assert.deepEqual(validateCommand(good), good);
});

Deno.test("Store raft snapshot carries the ACME tables to a new replica", async () => {
  const { s, run } = store();
  run(claim(4));
  run({
    type: "acme.account.create",
    term: 4,
    account: { directory: DIR, email: "", keySealed: "a2V5", createdMs: 1 },
  });
  run(set(4, 0));
  const dir = await Deno.makeTempDir();
  try {
    await s.writeSnapshotFile(`${dir}/snap`, "raft");
    const replica = Store.open(":memory:");
    replica.installSnapshotFile(`${dir}/snap`);
    assert.deepEqual(replica.acme.lease(), s.acme.lease());
    assert.deepEqual(replica.acme.account(DIR), s.acme.account(DIR));
    assert.deepEqual(replica.acme.names(), s.acme.names());
    assert.equal(replica.acme.keyAuthorization(TOKEN), `${TOKEN}.${THUMB}`);
    replica.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
