import assert from "node:assert/strict";
import { decode, filledStore, query, testServer } from "../_testing.ts";
import type { FromWorker, InitMessage } from "./protocol.ts";
import { WorkerDns } from "./worker_server.ts";

const INIT: InitMessage = {
  type: "init",
  index: 0,
  host: "127.0.0.1",
  port: 0,
  udp: "none",
  dgramFallback: false,
  zone: { domain: "berth.", edgeDomain: null, ttl: 0 },
  recursion: true,
  forwardInflightMax: 2,
};

Deno.test("WorkerDns relays at most forwardInflightMax queries (more: SERVFAIL) and answers repeats from its own cache", async () => {
  const up = filledStore([{ name: "u1", address: "10.9.0.1" }], [
    { id: "a1", service: "a", address: "10.9.0.10" },
    { id: "b1", service: "b", address: "10.9.0.11" },
  ]);
  const upstream = testServer(up.store, { domain: "up.", edgeDomain: null, ttl: 30 });
  const posted: FromWorker[] = [];
  const w = new WorkerDns(INIT, (m) => posted.push(m));
  try {
    const a = w.answer(query("a.service.up", "A", { id: 1 }), false);
    const b = w.answer(query("b.service.up", "A", { id: 2 }), false);
    assert.ok(a instanceof Promise && b instanceof Promise, "not relayed");
    // A third while two wait: SERVFAIL at once, nothing posted.
    const c = w.answer(query("c.service.up", "A", { id: 3 }), false);
    assert.ok(c instanceof Uint8Array);
    assert.equal(decode(c).rcode, "SERVFAIL");
    const forwards = posted.filter((m) => m.type === "forward");
    assert.equal(forwards.length, 2);
    // The main thread's answers come back (the forwarder gives them the query's id).
    for (const f of forwards) {
      if (f.type !== "forward") continue;
      const response = upstream.answer(f.query, false);
      assert.ok(response instanceof Uint8Array);
      w.onMessage({ type: "forwarded", id: f.id, response });
    }
    assert.deepEqual(decode((await a)!).answers.map((x) => x.data), ["10.9.0.10"]);
    assert.deepEqual(decode((await b)!).answers.map((x) => x.data), ["10.9.0.11"]);
    // Asked again (another id, another spelling): from the worker's cache, no trip.
    const again = w.answer(query("A.service.UP", "A", { id: 7 }), false);
    assert.ok(again instanceof Uint8Array, "relayed again");
    const m = decode(again);
    assert.equal(m.id, 7);
    assert.equal(m.questions[0]!.name, "A.service.UP");
    assert.deepEqual(m.answers.map((x) => x.data), ["10.9.0.10"]);
    assert.equal(posted.filter((p) => p.type === "forward").length, 2);
  } finally {
    w.close();
    up.store.close();
  }
});
