import assert from "node:assert/strict";
import { ALLOW } from "./allow.ts";
import { built, settingsOf, stateOf } from "./_request_testing.ts";

Deno.test("ALLOW: clients in a listed network go on, others get 403", () => {
  const m = built(ALLOW, { "berth.http.allow": "10.0.0.0/8,2001:db8::/32,127.0.0.1/32" });
  const answer = (client: string) => m.request!(stateOf({ client }));
  assert.equal(answer("10.9.9.9"), null);
  assert.equal(answer("::ffff:10.1.2.3"), null, "IPv4-mapped matched as IPv4");
  assert.equal(answer("2001:db8::77"), null);
  assert.equal(answer("127.0.0.1"), null);
  const no = answer("192.168.1.1");
  assert.ok(no !== null && !(no instanceof Promise));
  assert.equal(no.status, 403);
  assert.match(no.text, /192\.168\.1\.1/);
  assert.equal((answer("::1") as { status: number }).status, 403);
  assert.equal((answer("") as { status: number }).status, 403, "no address: refused");
});

Deno.test("ALLOW: off without the key; a stored value that no longer parses refuses all", () => {
  assert.equal(ALLOW.build(settingsOf({})), null);
  const m = built(ALLOW, { "berth.http.allow": "10.0.0.0/99" });
  const a = m.request!(stateOf({ client: "10.0.0.1" })) as { status: number; text: string };
  assert.equal(a.status, 500);
  assert.match(a.text, /berth\.http\.allow/);
});
