/**
 * DnsServer.reconfigure(): the DNS settings a SIGHUP reloads (README "Shutdown and reload").
 */
import assert from "node:assert/strict";
import { decode, filledStore, query, testServer } from "./_testing.ts";

/** The TTLs of the answer to `name`, from the server's request path. */
async function ttls(s: ReturnType<typeof testServer>, name: string): Promise<number[]> {
  const r = await s.answer(query(name, "A"), false);
  return decode(r!).answers.map((a) => a.ttl!);
}

Deno.test("DnsServer.reconfigure() answers with new TTLs once the rebuilt zone takes over", async () => {
  const { store } = filledStore([{ name: "n1", address: "192.168.1.1" }], [
    { id: "web1", service: "web" },
    { id: "db1", service: "db" },
  ]);
  const s = testServer(store, { ttl: 0 });
  await s.start();
  try {
    assert.deepEqual(await ttls(s, "web.service.berth"), [0]);
    await s.reconfigure({ ttl: 30, serviceTtl: new Map([["db", 5]]), recursors: [] });
    assert.deepEqual(await ttls(s, "web.service.berth"), [30], "cached answers are not kept");
    assert.deepEqual(await ttls(s, "db.service.berth"), [5]);
  } finally {
    await s.close();
    store.close();
  }
});

Deno.test("DnsServer.reconfigure() forwards to new recursors; none: REFUSED", async () => {
  const up = filledStore([{ name: "u1", address: "10.9.0.1" }], [
    { id: "api1", service: "api", address: "10.9.0.10", port: 80 },
  ]);
  const upstream = testServer(up.store, { domain: "up.", edgeDomain: null, ttl: 30 });
  await upstream.start();
  const { store } = filledStore([{ name: "n1", address: "192.168.1.1" }], []);
  const s = testServer(store);
  await s.start();
  try {
    const ask = async () => decode((await s.answer(query("api.service.up", "A"), false))!);
    assert.equal((await ask()).rcode, "REFUSED");
    await s.reconfigure({ ttl: 0, serviceTtl: new Map(), recursors: [upstream.address.udp] });
    assert.deepEqual((await ask()).answers.map((a) => a.data), ["10.9.0.10"]);
    await s.reconfigure({ ttl: 0, serviceTtl: new Map(), recursors: [] });
    assert.equal((await ask()).rcode, "REFUSED");
  } finally {
    await s.close();
    await upstream.close();
    up.store.close();
    store.close();
  }
});
