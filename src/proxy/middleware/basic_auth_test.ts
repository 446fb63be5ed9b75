import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { basicAuthPart, basicCredential } from "./basic_auth.ts";
import { BcryptThread, BcryptVerifier } from "./bcrypt_verifier.ts";
import { built, requestOf, settingsOf, stateOf } from "./_request_testing.ts";
import { headerOf } from "./header_list.ts";

/** htpasswd -nbB -C 5 alice 'open sesame' */
const ALICE = "$2y$05$RSHBjHt/M4PB2K2baOOtpONVspbT9e/0THJF5lxdxXnD0/9krfPGu";
/** htpasswd -nbB -C 4 bob hunter2 */
const BOB = "$2y$04$kaAwnn/Ky58PrgaO9aW9vuMtPsyE3U3RtV9HmHdxqbBizysAxSuEO";
const META = { "berth.http.auth.basic": `alice:${ALICE},bob:${BOB}` };

const basic = (userPass: string) => `Basic ${Buffer.from(userPass).toString("base64")}`;

Deno.test("basicCredential() reads Basic user:password, refusing what is not", () => {
  assert.deepEqual(basicCredential(basic("alice:open sesame")), {
    value: Buffer.from("alice:open sesame").toString("base64"),
    user: "alice",
    password: "open sesame",
  });
  assert.equal(basicCredential(basic("a:b:c"))?.password, "b:c", "the first colon ends the user");
  assert.equal(basicCredential(`bAsIc  ${Buffer.from("a:").toString("base64")}`)?.password, "");
  assert.equal(basicCredential(undefined), null);
  assert.equal(basicCredential("Bearer abc"), null);
  assert.equal(basicCredential("Basic"), null);
  assert.equal(basicCredential("Basic !!!"), null);
  assert.equal(basicCredential(basic("nocolon")), null);
  assert.equal(basicCredential(basic(":pw")), null, "no user");
  assert.equal(
    basicCredential(`Basic ${Buffer.from([0x61, 0x3a, 0xff]).toString("base64")}`),
    null,
  );
  assert.equal(basicCredential(`Basic ${"QUFB".repeat(300)}`), null, "too long");
});

Deno.test("BASIC_AUTH: 401 with the realm's challenge without, or with wrong, credentials", async () => {
  const t = new BcryptThread();
  const verifier = new BcryptVerifier({ verify: (p, h) => t.verify(p, h) });
  try {
    const m = built(basicAuthPart(verifier), { ...META, "berth.http.auth.realm": "Staff" });
    for (
      const auth of [undefined, "Bearer x", basic("alice:wrong"), basic("carol:open sesame")]
    ) {
      const headers = auth === undefined ? [] : ["Authorization", auth];
      const a = await requestOf(m, stateOf({ headers }));
      assert.equal(a?.status, 401, String(auth));
      assert.deepEqual(a?.headers, ["www-authenticate", 'Basic realm="Staff", charset="UTF-8"']);
    }
    assert.equal(verifier.runs, 1, "an unknown user costs no bcrypt run");
  } finally {
    t.close();
  }
});

Deno.test("BASIC_AUTH: the right password goes on without Authorization, as X-Forwarded-User", async () => {
  const t = new BcryptThread();
  const verifier = new BcryptVerifier({ verify: (p, h) => t.verify(p, h) });
  try {
    const m = built(basicAuthPart(verifier), META);
    const s = stateOf({
      headers: ["Authorization", basic("bob:hunter2"), "X-Forwarded-User", "root", "a", "1"],
    });
    const first = m.request!(s);
    assert.ok(first instanceof Promise, "a first check waits for the verifier thread");
    assert.equal(await first, null);
    assert.deepEqual(s.headers, ["a", "1", "x-forwarded-user", "bob"]);
    const again = stateOf({ headers: ["authorization", basic("bob:hunter2")] });
    assert.equal(m.request!(again), null, "remembered: answered synchronously");
    assert.equal(headerOf(again.headers, "authorization"), undefined);
    assert.equal(verifier.runs, 1);
    const alice = await requestOf(
      m,
      stateOf({ headers: ["authorization", basic("alice:open sesame")] }),
    );
    assert.equal(alice, null);
  } finally {
    t.close();
  }
});

Deno.test("BASIC_AUTH: 429 with Retry-After when too many checks are under way", async () => {
  const release: (() => void)[] = [];
  const verifier = new BcryptVerifier({
    inFlightMax: 1,
    verify: () => new Promise((resolve) => release.push(() => resolve(false))),
  });
  const m = built(basicAuthPart(verifier), META);
  const first = m.request!(stateOf({ headers: ["authorization", basic("alice:guess1")] }));
  const busy = await requestOf(m, stateOf({ headers: ["authorization", basic("alice:guess2")] }));
  assert.equal(busy?.status, 429);
  assert.deepEqual(busy?.headers, ["retry-after", "1"]);
  release[0]!();
  assert.equal((await first)?.status, 401);
  assert.equal(release.length, 1, "the busy guess was never checked");
});

Deno.test("BASIC_AUTH: off without the key; a stored value that no longer parses refuses all", async () => {
  assert.equal(basicAuthPart().build(settingsOf({})), null);
  const m = built(basicAuthPart(), { "berth.http.auth.basic": "alice:plain" });
  const a = await requestOf(m, stateOf({ headers: ["authorization", basic("alice:plain")] }));
  assert.equal(a?.status, 500);
});
