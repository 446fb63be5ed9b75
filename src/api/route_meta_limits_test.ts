import assert from "node:assert/strict";
import { fixture } from "./_testing.ts";

Deno.test("PUT /v1/agent/service/register: a bad berth.http.ratelimit or compress Meta is a 400", async (t) => {
  const cases: [string, RegExp][] = [
    [
      '{"berth.http.ratelimit":"lots"}',
      /Meta\.berth\.http\.ratelimit: expected RATE\/s or RATE\/m, optionally ,burst=N \(e\.g\. 100\/s,burst=200\), got "lots"/,
    ],
    [
      '{"berth.http.ratelimit":"5/s,burst=0"}',
      /Meta\.berth\.http\.ratelimit: expected a burst in \[1, 1000000\], got "5\/s,burst=0"/,
    ],
    [
      '{"berth.http.compress":"deflate"}',
      /Meta\.berth\.http\.compress: expected true, false, or a list of gzip and br/,
    ],
  ];
  for (const [meta, message] of cases) {
    await t.step(meta, async () => {
      const f = fixture();
      try {
        const before = f.store.appliedIndex();
        const r = await f.app.request("/v1/agent/service/register", {
          method: "PUT",
          body: `{"Name":"a","Port":80,"Meta":${meta}}`,
        });
        const text = await r.text();
        assert.equal(r.status, 400, text);
        assert.match(text, message);
        assert.equal(text.trimEnd().split("\n").length, 1, text);
        assert.equal(f.store.appliedIndex(), before);
      } finally {
        f.close();
      }
    });
  }
});

Deno.test("PUT /v1/agent/service/register stores berth.http.ratelimit and compress canonical", async () => {
  const f = fixture();
  try {
    const r = await f.app.request("/v1/agent/service/register", {
      method: "PUT",
      body:
        '{"Name":"a","Port":80,"Meta":{"berth.http.ratelimit":"10/s","berth.http.compress":"true"}}',
    });
    assert.equal(r.status, 200, await r.text());
    const list = await (await f.app.request("/v1/agent/services")).json();
    const meta = (Object.values(list)[0] as { Meta: Record<string, string> }).Meta;
    assert.equal(meta["berth.http.ratelimit"], "10/s,burst=10");
    assert.equal(meta["berth.http.compress"], "br,gzip");
  } finally {
    f.close();
  }
});
