import assert from "node:assert/strict";
import {
  decode,
  filledStore,
  frame,
  manyInstances,
  query,
  tcpExchange,
  testServer,
  udpExchange,
} from "./_testing.ts";

Deno.test("DnsServer forwards other names to a recursor and caches the answer", async () => {
  const up = filledStore([{ name: "u1", address: "10.9.0.1" }], [
    { id: "api1", service: "api", address: "10.9.0.10", port: 80 },
    ...manyInstances(100),
  ]);
  const upstream = testServer(up.store, { domain: "up.", edgeDomain: null, ttl: 30 });
  await upstream.start();
  const { store } = filledStore([{ name: "n1", address: "192.168.1.1" }], []);
  const s = testServer(store, { recursors: [upstream.address.udp] });
  await s.start();
  try {
    const r = decode(await udpExchange(s.address.udp, query("API.service.up", "A", { id: 5 })));
    assert.equal(r.id, 5);
    assert.ok(r.flag_ra);
    assert.equal(r.questions[0]?.name, "API.service.up");
    assert.deepEqual(r.answers.map((a) => [a.data, a.ttl]), [["10.9.0.10", 30]]);
    // Truncated over UDP upstream: retried over TCP, whole over TCP downstream.
    const [big] = await tcpExchange(s.address.tcp, frame(query("big.service.up", "A")), 1);
    const b = decode(big!);
    assert.ok(!b.flag_tc);
    assert.equal(b.answers.length, 100);
    // Too big for a plain UDP client: TC, not cut.
    const bu = decode(await udpExchange(s.address.udp, query("big.service.up", "A")));
    assert.ok(bu.flag_tc);
    // Upstream gone: the cached answer is still served.
    await upstream.close();
    const cached = decode(await udpExchange(s.address.udp, query("api.service.up", "A")));
    assert.deepEqual(cached.answers.map((a) => a.data), ["10.9.0.10"]);
    assert.ok(cached.answers[0]!.ttl! <= 30);
    assert.equal(cached.questions[0]?.name, "api.service.up");
  } finally {
    await s.close();
    await upstream.close();
    up.store.close();
    store.close();
  }
});

Deno.test("DnsServer answers SERVFAIL when no recursor answers", async () => {
  const { store } = filledStore([{ name: "n1", address: "192.168.1.1" }], []);
  const silent = { host: "127.0.0.1", port: 9 }; // discard: nothing answers
  const s = testServer(store, { recursors: [silent], forward: { timeoutMs: 100 } });
  try {
    const r = s.answer(query("example.com", "A", { id: 3 }), false);
    assert.ok(r instanceof Promise);
    const m = decode((await r)!);
    assert.equal(m.id, 3);
    assert.equal(m.rcode, "SERVFAIL");
  } finally {
    await s.close();
    store.close();
  }
});
