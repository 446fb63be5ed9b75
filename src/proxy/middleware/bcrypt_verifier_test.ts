import assert from "node:assert/strict";
import { BcryptThread, BcryptVerifier, type Verdict } from "./bcrypt_verifier.ts";

/** htpasswd -nbB -C 5 alice 'open sesame' */
const ALICE = "$2y$05$RSHBjHt/M4PB2K2baOOtpONVspbT9e/0THJF5lxdxXnD0/9krfPGu";
/** The OpenBSD / John the Ripper bcrypt test vector: "U*U" at cost 5, $2a$. */
const U_STAR_U = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
/** The empty password at cost 5 (crypt_blowfish's test vectors). */
const EMPTY = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy";

Deno.test("BcryptThread.verify() checks known answers: htpasswd $2y$, OpenBSD $2a$ vectors", async () => {
  const t = new BcryptThread();
  try {
    assert.equal(await t.verify("open sesame", ALICE), true);
    assert.equal(await t.verify("open sesamE", ALICE), false);
    assert.equal(await t.verify("U*U", U_STAR_U), true);
    assert.equal(await t.verify("U*U", U_STAR_U.replace("$2a$", "$2b$")), true);
    assert.equal(await t.verify("U*V", U_STAR_U), false);
    assert.equal(await t.verify("", EMPTY), true);
    assert.equal(await t.verify("x", "not a hash"), false, "a refused hash is no match");
  } finally {
    t.close();
  }
});

/** A check that resolves when the test says, counting calls. */
function controlled() {
  const calls: { password: string; done: (ok: boolean) => void }[] = [];
  const verify = (password: string) =>
    new Promise<boolean>((resolve) => calls.push({ password, done: resolve }));
  return { calls, verify };
}

Deno.test("BcryptVerifier.check() remembers good and bad verdicts without checking again", async () => {
  const { calls, verify } = controlled();
  const v = new BcryptVerifier({ verify });
  const first = v.check("Basic YTpnb29k", "good", "H");
  assert.ok(first instanceof Promise);
  calls[0]!.done(true);
  assert.equal(await first, true);
  assert.equal(v.check("Basic YTpnb29k", "good", "H"), true, "synchronous from memory");
  const wrong = v.check("Basic YTpiYWQ=", "bad", "H");
  calls[1]!.done(false);
  assert.equal(await wrong, false);
  assert.equal(v.check("Basic YTpiYWQ=", "bad", "H"), false);
  assert.equal(calls.length, 2, "two checks run in all");
  assert.deepEqual(v.remembered, [1, 1]);
  const otherHash = v.check("Basic YTpnb29k", "good", "H2");
  assert.ok(otherHash instanceof Promise, "a new hash is a new key");
  calls[2]!.done(false);
  assert.equal(await otherHash, false);
});

Deno.test("BcryptVerifier.check() runs at most inFlightMax checks; the rest are busy unchecked", async () => {
  const { calls, verify } = controlled();
  const v = new BcryptVerifier({ verify, inFlightMax: 2 });
  const a = v.check("a", "a", "H", "a");
  const b = v.check("b", "b", "H", "b");
  assert.equal(v.check("c", "c", "H", "c"), "busy");
  assert.equal(v.check("d", "d", "H", "d"), "busy");
  assert.equal(calls.length, 2, "no check ran for the busy ones");
  assert.equal(v.check("a", "a", "H", "a"), a, "the same check under way is shared");
  calls[0]!.done(false);
  await a;
  const c = v.check("c", "c", "H", "c");
  assert.ok(c instanceof Promise, "a slot is free again");
  calls[1]!.done(false);
  calls[2]!.done(true);
  assert.deepEqual(await Promise.all([b, c]), [false, true]);
  assert.equal(v.inFlight, 0);
});

Deno.test("BcryptVerifier.check() keeps guesses from evicting good verdicts; bounded memories", async () => {
  const v = new BcryptVerifier({
    verify: (p) => Promise.resolve(p === "right"),
    goodMax: 2,
    badMax: 3,
  });
  assert.equal(await v.check("right", "right", "H"), true);
  for (let i = 0; i < 50; i++) assert.equal(await v.check(`g${i}`, `g${i}`, "H"), false);
  assert.deepEqual(v.remembered, [1, 3]);
  assert.equal(v.check("right", "right", "H"), true, "still remembered");
  const runs = v.runs;
  assert.equal(await v.check("g0", "g0", "H"), false, "an evicted guess runs again");
  assert.equal(v.runs, runs + 1);
});

Deno.test("BcryptVerifier.check() answers busy, remembering nothing, when the check fails; logs once a minute", async () => {
  let fail = true;
  let now = 0;
  const lines: string[] = [];
  const v = new BcryptVerifier({
    verify: () => fail ? Promise.reject(new Error("thread died")) : Promise.resolve(true),
    log: (line) => lines.push(line),
    now: () => now,
  });
  const r: Verdict | Promise<Verdict> = v.check("a", "a", "H");
  assert.equal(await r, "busy");
  assert.equal(await v.check("b", "b", "H"), "busy");
  assert.deepEqual(lines, [
    "proxy: basic auth: a password check failed (answered 429): thread died",
  ]);
  now = 60_000;
  assert.equal(await v.check("c", "c", "H"), "busy");
  assert.equal(lines.length, 2);
  fail = false;
  assert.equal(await v.check("a", "a", "H"), true);
  assert.equal(v.inFlight, 0);
});

Deno.test("BcryptVerifier.check() runs one check per client at a time: a guesser cannot lock others out", async () => {
  const { calls, verify } = controlled();
  const v = new BcryptVerifier({ verify, inFlightMax: 4 });
  const first = v.check("g0", "g0", "H", "203.0.113.9");
  assert.ok(first instanceof Promise);
  for (let i = 1; i < 40; i++) {
    assert.equal(v.check(`g${i}`, `g${i}`, "H", "203.0.113.9"), "busy", `guess ${i}`);
  }
  assert.equal(v.check("g0", "g0", "H", "203.0.113.9"), first, "the same check is shared");
  const legit = v.check("right", "right", "H", "198.51.100.1");
  assert.ok(legit instanceof Promise, "another client's first login is checked");
  assert.equal(calls.length, 2);
  calls[1]!.done(true);
  assert.equal(await legit, true);
  calls[0]!.done(false);
  assert.equal(await first, false);
  const again = v.check("g1", "g1", "H", "203.0.113.9");
  assert.ok(again instanceof Promise, "the guesser's slot is free again");
  calls[2]!.done(false);
  await again;
  assert.equal(v.inFlight, 0);
});
