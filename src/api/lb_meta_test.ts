import assert from "node:assert/strict";
import { fixture, put } from "./_testing.ts";

Deno.test("PUT /v1/agent/service/register: a bad balancing Meta value is a 400 naming the key; good ones are stored canonical", async () => {
  const f = fixture();
  try {
    for (
      const [meta, want] of [
        [
          { "berth.http.retries": "11" },
          /Meta\.berth\.http\.retries: expected an integer in \[0, 10\], got "11"/,
        ],
        [
          { "berth.lb.hash": "query:q" },
          /Meta\.berth\.lb\.hash: expected ip, header:NAME or cookie:NAME/,
        ],
        [
          { "berth.http.slow-start": "2h" },
          /Meta\.berth\.http\.slow-start: expected a duration from 1s to 1h/,
        ],
        [
          { "berth.lb": "sticky-ish" },
          /Meta\.berth\.lb: expected round_robin\|least_conn\|p2c\|hash\|sticky_cookie/,
        ],
      ] as const
    ) {
      const r = await f.app.request(
        "/v1/agent/service/register",
        put({ Name: "web", Port: 80, Meta: meta }),
      );
      assert.equal(r.status, 400, JSON.stringify(meta));
      assert.match(await r.text(), want);
    }
    assert.deepEqual(f.store.instances(), [], "nothing stored");
    const ok = await f.app.request(
      "/v1/agent/service/register",
      put({
        Name: "web",
        Port: 80,
        Meta: {
          "berth.lb": "Sticky-Cookie",
          "berth.lb.cookie.ttl": "90m",
          "berth.http.timeout": "3600s",
        },
      }),
    );
    assert.equal(ok.status, 200, await ok.text());
    const meta = f.store.instances()[0]!.meta;
    assert.equal(meta["berth.lb"], "sticky_cookie");
    assert.equal(meta["berth.lb.cookie.ttl"], "90m");
    assert.equal(meta["berth.http.timeout"], "1h");
  } finally {
    f.close();
  }
});
