import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type CertRecord, type Command, Store, validateCommand } from "./mod.ts";

const hash = (s: string) => createHash("sha256").update(s).digest("hex");
const H = hash("the-secret");
const PEM_CERT = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n";
const PEM_KEY = "-----BEGIN PRIVATE KEY-----\nREVG\n-----END PRIVATE KEY-----\n";

const create = (over: Partial<Extract<Command, { type: "token.create" }>> = {}): Command => ({
  type: "token.create",
  id: "tok001",
  hash: H,
  ttlMs: null,
  uses: null,
  description: "",
  nowMs: 1000,
  ...over,
});
const KEY = hash("key 1");
const cert = (node: string, serial = "0a", notAfter = 100_000, key = KEY): CertRecord => ({
  serial,
  node,
  notAfter,
  key,
});
const use = (nowMs: number, over: Partial<Extract<Command, { type: "token.use" }>> = {}) =>
  ({
    type: "token.use",
    id: "tok001",
    hash: H,
    cert: cert("n2", `${nowMs}`),
    nowMs,
    ...over,
  }) as Command;

/** A store whose member 1 is `n1`, then `cmds` applied in order. */
function storeWith(...cmds: Command[]) {
  const s = Store.open(":memory:");
  s.apply(1, {
    type: "conf",
    voters: [1],
    learners: [],
    upsert: { id: 1, name: "n1", address: "127.0.0.1:1" },
  });
  const apply = (c: Command) => s.apply(s.appliedIndex() + 1, c);
  const results = cmds.map(apply);
  return { s, results, apply };
}

Deno.test("PkiState: pki.init sets the CA once, a second init is refused", () => {
  const { s, results } = storeWith(
    { type: "pki.init", caCert: PEM_CERT, caKey: PEM_KEY },
    { type: "pki.init", caCert: PEM_CERT, caKey: PEM_KEY },
  );
  assert.deepEqual(results[0], { ok: true });
  assert.equal(results[1]!.ok, false);
  assert.deepEqual(s.pki.ca(), { certPem: PEM_CERT, keyPem: PEM_KEY });
});

Deno.test("PkiState: token.create stores expiry from the leader's time and lists no hash", () => {
  const { s } = storeWith(create({ ttlMs: 60_000, uses: 2, description: "rack 4" }));
  const list = s.pki.tokens();
  assert.deepEqual(list, [{
    id: "tok001",
    created: 1000,
    expires: 61_000,
    usesLeft: 2,
    revokedAt: null,
    description: "rack 4",
  }]);
  assert.ok(!JSON.stringify(list).includes(H));
});

Deno.test("PkiState: token.use spends a use and records the certificate; refusals change nothing", async (t) => {
  await t.step("valid token: use counted, cert recorded", () => {
    const { s, apply } = storeWith(create({ uses: 2 }));
    assert.deepEqual(apply(use(2000)), { ok: true });
    assert.equal(s.pki.tokens()[0]!.usesLeft, 1);
    assert.deepEqual(s.pki.certsOf("n2").map((c) => c.serial), ["2000"]);
  });
  const cases: [string, Command[], Command, RegExp][] = [
    ["unknown id", [create()], use(2000, { id: "zzz999" }), /zzz999 is not known/],
    ["wrong secret", [create()], use(2000, { hash: hash("other") }), /wrong secret/],
    ["expired", [create({ ttlMs: 1000 })], use(2000), /has expired/],
    [
      "revoked",
      [create(), { type: "token.revoke", id: "tok001", nowMs: 1500 }],
      use(2000),
      /was revoked/,
    ],
    ["used up", [create({ uses: 1 }), use(1500)], use(2000), /is used up/],
  ];
  for (const [name, before, cmd, want] of cases) {
    await t.step(name, () => {
      const { s, apply } = storeWith(...before);
      const tokensBefore = JSON.stringify(s.pki.tokens());
      const certsBefore = s.pki.certsOf("n2").length;
      const r = apply(cmd);
      assert.equal(r.ok, false);
      assert.match(r.error!, want);
      assert.ok(!r.error!.includes(H));
      assert.equal(JSON.stringify(s.pki.tokens()), tokensBefore);
      assert.equal(s.pki.certsOf("n2").length, certsBefore);
    });
  }
});

Deno.test("PkiState.enrollProblem(): a member's name is refused even with its certificates expired", () => {
  const { s, apply } = storeWith(
    create(),
    { type: "cert.record", cert: cert("n1", "01", 50_000), nowMs: 1000 },
  );
  for (const now of [2000, 60_000]) {
    const r = apply(use(now, { cert: cert("n1", `0${now}`, now + 90_000) }));
    assert.equal(r.ok, false);
    assert.match(r.error!, /n1 is a member; remove it first/);
  }
  assert.deepEqual(s.pki.certsOf("n1").map((c) => c.serial), ["01"]);
});

Deno.test("PkiState.enrollProblem(): a name with a valid certificate is enrolled again only for the same key", () => {
  const { s, apply } = storeWith(create(), use(2000, { cert: cert("n2", "a1", 90_000) }));
  const other = apply(use(3000, { cert: cert("n2", "a2", 90_000, hash("key 2")) }));
  assert.equal(other.ok, false);
  assert.match(other.error!, /n2 has a valid certificate for another key/);
  // The same key (its first answer was lost), or another once the first expired: issued.
  assert.deepEqual(apply(use(4000, { cert: cert("n2", "a3", 91_000) })), { ok: true });
  assert.deepEqual(
    apply(use(95_000, { cert: cert("n2", "a4", 190_000, hash("key 2")) })),
    { ok: true },
  );
  assert.deepEqual(s.pki.certsOf("n2").map((c) => c.serial), ["a4", "a3", "a1"]);
});

Deno.test("PkiState.record() prunes a revoked certificate only once it is over the clock skew past its end", () => {
  const { s, apply } = storeWith(
    {
      type: "conf",
      voters: [1],
      learners: [2],
      upsert: { id: 2, name: "n2", address: "127.0.0.1:2" },
    },
    { type: "cert.record", cert: cert("n2", "aa", 50_000), nowMs: 1000 },
  );
  apply({ type: "conf", voters: [1], learners: [], remove: 2 });
  // The leader's clock is just past its end: a member whose clock runs behind must still see
  // it revoked.
  apply({ type: "cert.record", cert: cert("n1", "b1", 900_000), nowMs: 50_001 });
  assert.equal(s.pki.certStatus("aa"), "revoked");
  apply({ type: "cert.record", cert: cert("n1", "b2", 900_000), nowMs: 50_000 + 5 * 60_000 + 1 });
  assert.equal(s.pki.certStatus("aa"), "unknown");
});

Deno.test("PkiState: removing a member revokes its certificates in the same apply", () => {
  const { s, apply } = storeWith(
    {
      type: "conf",
      voters: [1],
      learners: [2],
      upsert: { id: 2, name: "n2", address: "127.0.0.1:2" },
    },
    { type: "cert.record", cert: cert("n2", "aa"), nowMs: 1000 },
    { type: "cert.record", cert: cert("n1", "bb"), nowMs: 1000 },
  );
  assert.equal(s.pki.revoked("aa"), false);
  apply({ type: "conf", voters: [1], learners: [], remove: 2 });
  assert.equal(s.pki.revoked("aa"), true);
  assert.equal(s.pki.revoked("bb"), false);
  // No renewal for a node that is no member any more.
  const r = apply({ type: "cert.record", cert: cert("n2", "cc"), nowMs: 2000 });
  assert.equal(r.ok, false);
  assert.match(r.error!, /n2 is not a member/);
});

Deno.test("PkiState: the tables travel in a raft snapshot", async () => {
  const { s } = storeWith(
    { type: "pki.init", caCert: PEM_CERT, caKey: PEM_KEY },
    create(),
    { type: "cert.record", cert: cert("n1", "01"), nowMs: 1000 },
  );
  const dir = await Deno.makeTempDir();
  try {
    await s.writeSnapshotFile(`${dir}/snap`, "raft");
    const t = Store.open(":memory:");
    t.installSnapshotFile(`${dir}/snap`);
    assert.deepEqual(t.pki.ca(), s.pki.ca());
    assert.deepEqual(t.pki.tokens(), s.pki.tokens());
    assert.deepEqual(t.pki.certsOf("n1"), s.pki.certsOf("n1"));
    // A user snapshot carries none of them.
    await s.writeSnapshotFile(`${dir}/user`, "user");
    const text = new TextDecoder().decode(await Deno.readFile(`${dir}/user`));
    assert.ok(!text.includes("BEGIN PRIVATE KEY") && !text.includes(H));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validateCommand: bad security fields give one line that never quotes the value", () => {
  const bad: [unknown, RegExp][] = [
    [{ type: "pki.init", caCert: "nope", caKey: PEM_KEY }, /caCert: expected a PEM certificate$/],
    [{ type: "pki.init", caCert: PEM_CERT, caKey: "x".repeat(99) }, /caKey: expected a PEM/],
    [{ ...create(), hash: "A".repeat(64) }, /hash: expected 64 lower-case hex digits$/],
    [{ ...create(), id: "TOOLONG1" }, /id: expected 6 of a-z0-9/],
    [{ ...create(), ttlMs: 5 }, /ttlMs: expected an integer in/],
    [{ ...create(), uses: 0 }, /uses: expected an integer in \[1,/],
    [{ ...create(), description: "a\nb" }, /description: expected text without control/],
    [{ type: "cert.record", cert: cert("bad name"), nowMs: 1 }, /cert.node: not a member name/],
    [{ type: "cert.record", cert: cert("n1", "XYZ"), nowMs: 1 }, /serial: expected 1 to 64/],
    [{ type: "token.revoke", id: "tok001" }, /nowMs: expected an integer/],
  ];
  for (const [cmd, want] of bad) {
    assert.throws(() => validateCommand(cmd), (e: Error) => {
      assert.match(e.message, want);
      assert.ok(!e.message.includes("\n"));
      assert.ok(!e.message.includes(H.slice(0, 20)) && !e.message.includes("xxxxxxxx"));
      return true;
    });
  }
});
