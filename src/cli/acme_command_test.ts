import assert from "node:assert/strict";
import { ApiServer } from "../api/mod.ts";
import { LocalCluster } from "../cluster/testing.ts";
import { Store } from "../store/mod.ts";
import { VERSION } from "../version.ts";
import { type CliIo, main } from "./mod.ts";

async function run(argv: string[], env: Record<string, string>) {
  let out = "";
  let err = "";
  const cio: CliIo = {
    stdout: (c) => out += typeof c === "string" ? c : new TextDecoder().decode(c),
    stderr: (t) => err += t,
    env,
  };
  const code = await main(argv, cio);
  return { code, out, err };
}

Deno.test("berth acme and berth cert list show names being ordered with error and next attempt; berth cert renew asks a renewal", async () => {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" });
  const api = new ApiServer({
    store,
    cluster,
    node: "n1",
    advertise: "127.0.0.1",
    version: VERSION,
    aclDefault: "allow",
    listen: { host: "127.0.0.1", port: 0 },
  });
  await api.start();
  try {
    const env = { BERTH_HTTP_ADDR: `http://127.0.0.1:${api.address.port}` };
    await cluster.propose({ type: "acme.claim", term: 3, node: "n1", nowMs: 0 });
    await cluster.propose({
      type: "acme.name.set",
      term: 3,
      expectIndex: 0,
      state: {
        name: "web.example.com",
        directory: "https://ca.test/dir",
        order: null,
        challenges: [],
        failures: 3,
        nextAttemptMs: Date.UTC(2026, 0, 1, 12),
        lastError: "web.example.com: connection: refused",
        lastErrorMs: 1,
        renew: false,
      },
    });
    let r = await run(["acme"], env);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Ordered by n1 \(term 3\)/);
    assert.match(
      r.out,
      /web\.example\.com\s+waiting\s+3\s+2026-01-01T12:00:00Z\s+web\.example\.com: connection: refused/,
    );
    // berth cert list shows the name in flight, without a certificate yet.
    r = await run(["cert", "list"], env);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trimEnd().split("\n");
    assert.match(lines[0]!, /^Name +Names +Issuer +Expires +Source +Default +ACME$/);
    assert.match(
      lines[1]!,
      /^web\.example\.com +web\.example\.com +- +- +acme +waiting, 3 failed, next 2026-01-01T12:00:00Z: web\.example\.com: connection: refused$/,
    );
    r = await run(["cert", "renew", "web.example.com"], env);
    assert.deepEqual([r.code, r.out], [0, "Renewal of web.example.com asked; see berth acme\n"]);
    assert.equal(store.acme.name("web.example.com")?.renew, true);
    r = await run(["cert", "renew", "nothing.example.com"], env);
    assert.equal(r.code, 1);
    assert.match(r.err, /nothing\.example\.com has no ACME certificate or order/);
    assert.equal(r.err.trim().split("\n").length, 1);
  } finally {
    await api.close();
    store.close();
  }
});
