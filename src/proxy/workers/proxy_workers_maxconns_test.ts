import assert from "node:assert/strict";
import type http from "node:http";
import { heldWebA, spec, startBackend, TestStore } from "../_testing.ts";
import { waitFor } from "../../../test/wait.ts";
import { get, withWorkers } from "./_testing.ts";

/** Requests sent at once, each on its own connection: the kernel spreads them over both workers. */
const CLIENTS = 24;

Deno.test("ProxyWorkers with berth.http.max-conns=1: the instance never has 2 requests at once while both workers take load", async () => {
  let inFlight = 0;
  let most = 0;
  /** The proxy's connection each request came on (its port): one per worker at cap 1. */
  const upstreamPorts = new Set<number>();
  const a = await startBackend("a", (req, res) => {
    req.resume();
    upstreamPorts.add(req.socket.remotePort!);
    most = Math.max(most, ++inFlight);
    setTimeout(() => {
      inFlight--;
      res.end(`a ${req.url}`);
    }, 20);
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port, meta: { "berth.http.max-conns": "1" } }));
  try {
    await withWorkers(ts, async (port) => {
      const got = await Promise.all(
        Array.from({ length: CLIENTS }, (_, i) => get(port, `/${i}`)),
      );
      assert.deepEqual(got, Array.from({ length: CLIENTS }, (_, i) => `200 a /${i}`));
      assert.equal(most, 1, "one request in flight at a time over both workers");
      // A worker at cap 1 sends every request over its one connection (kept alive): two
      // connections carried requests, so both workers did.
      assert.ok(upstreamPorts.size >= 2, `requests came over ${upstreamPorts.size} connection(s)`);
    });
  } finally {
    await a.close();
  }
});

Deno.test("ProxyWorkers with berth.http.max-conns=1 queue 2: one in flight, two wait over both workers, the rest 503 at once", async () => {
  const { ts, backend: a, held } = await heldWebA({
    "berth.http.max-conns": "1",
    "berth.http.max-conns.queue": "2",
  });
  try {
    await withWorkers(ts, async (port) => {
      const first = get(port, "/first");
      await waitFor("the first request reached the instance", () => held.length === 1);
      const later = Array.from({ length: 6 }, (_, i) => get(port, `/${i}`));
      const answered: string[] = [];
      for (const p of later) void p.then((r) => answered.push(r));
      // Of 6 more, 2 take the queue's places (whichever worker has them), 4 are turned away.
      await waitFor("4 turned away", () => answered.length === 4);
      for (const r of answered) {
        assert.match(
          r,
          /^503 .*instance web-a has its connections busy and its queue full \(berth\.http\.max-conns=1, queue 2\)/,
        );
      }
      assert.equal(held.length, 1, "the queued requests wait for the one slot");
      // Each answer frees the slot for the next waiting request, whichever worker has it.
      for (let i = 1; i <= 3; i++) {
        await waitFor(`request ${i} at the instance`, () => held.length === i);
        held[i - 1]!.end(`done ${i}`);
      }
      const all = [await first, ...await Promise.all(later)];
      assert.equal(all.filter((r) => /^200 done \d$/.test(r)).length, 3, all.join("\n"));
      assert.equal(all.filter((r) => r.startsWith("503 ")).length, 4, all.join("\n"));
    });
  } finally {
    for (const r of held) r.end();
    await a.close();
  }
});

Deno.test("ProxyWorkers: a killed worker's berth.http.max-conns slots and queue places go back", async () => {
  const held: http.ServerResponse[] = [];
  const a = await startBackend("a", (req, res) => {
    req.resume();
    if (req.url === "/held") held.push(res);
    else res.end(`a ${req.url}`);
  });
  const ts = new TestStore();
  ts.register(spec({
    id: "web-a",
    port: a.port,
    meta: { "berth.http.max-conns": "1", "berth.http.max-conns.queue": "20" },
  }));
  try {
    await withWorkers(ts, async (port, w) => {
      // One request holds the slot, the others wait in both workers' queues.
      const stuck = Array.from({ length: 8 }, () => get(port, "/held"));
      await waitFor("one request holds the slot", () => held.length === 1);
      // Both workers die with what they counted (and come back); a request waiting in the
      // second may take the slot the first held meanwhile.
      for (const i of [0, 1]) {
        w.kill(i);
        await waitFor(`worker ${i} is back`, () => w.running === 2);
      }
      for (const r of await Promise.all(stuck)) assert.match(r, /^error /);
      // Nothing of theirs is counted any more: a new request goes on at once.
      assert.equal(await get(port, "/after"), "200 a /after");
    });
  } finally {
    for (const r of held) r.end();
    await a.close();
  }
});
