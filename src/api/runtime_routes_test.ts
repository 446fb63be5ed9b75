import assert from "node:assert/strict";
import { fixture } from "./_testing.ts";
import { LoopProbe, type ProbeTimers } from "../lib/loop_probe.ts";
import { GapRecorder } from "../lib/gap_recorder.ts";

/** A probe on a clock the test moves; `fire(ms)` moves it and fires the chain's timer. */
function steppedProbe() {
  let now = 0;
  let pending: (() => void) | null = null;
  const timers: ProbeTimers = {
    now: () => now,
    set: (fn) => (pending = fn, 1),
    clear: () => (pending = null),
  };
  return {
    probe: new LoopProbe({ timers }),
    fire(ms: number) {
      now += ms;
      const p = pending!;
      pending = null;
      p();
    },
  };
}

Deno.test("GET /v1/berth/loop answers the probe's worst pause; ?reset zeroes it after", async () => {
  const s = steppedProbe();
  const f = fixture({ loopProbe: s.probe });
  try {
    s.probe.start();
    s.fire(1);
    s.fire(41); // 40 ms late
    s.fire(3);
    const first = await f.app.request("/v1/berth/loop?reset");
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), {
      worstPauseMs: 40,
      sinceMs: 45,
      pausesOver10Ms: 1,
      pausesOver50Ms: 0,
    });
    s.fire(1);
    assert.deepEqual(await (await f.app.request("/v1/berth/loop")).json(), {
      worstPauseMs: 0,
      sinceMs: 1,
      pausesOver10Ms: 0,
      pausesOver50Ms: 0,
    });
  } finally {
    s.probe.stop();
    f.close();
  }
});

Deno.test("GET /v1/berth/loop answers the heartbeat gaps beside the probe; ?reset zeroes them too", async () => {
  const s = steppedProbe();
  const gaps = new GapRecorder();
  const f = fixture({ loopProbe: s.probe, heartbeatGaps: gaps });
  try {
    s.probe.start();
    for (const t of [0, 100, 200, 650]) gaps.mark("1/2", t);
    const first = await (await f.app.request("/v1/berth/loop?reset")).json();
    assert.deepEqual(first.heartbeatGaps, { gaps: 3, p50Ms: 100, p99Ms: 450, worstMs: 450 });
    assert.deepEqual((await (await f.app.request("/v1/berth/loop")).json()).heartbeatGaps, {
      gaps: 0,
      p50Ms: null,
      p99Ms: null,
      worstMs: null,
    });
  } finally {
    s.probe.stop();
    f.close();
  }
});

Deno.test("GET /v1/berth/loop answers 404 naming BERTH_LOOP_PROBE when the probe is off", async () => {
  for (const probe of [undefined, new LoopProbe()]) { // none, or one never started
    const f = fixture({ loopProbe: probe });
    try {
      const r = await f.app.request("/v1/berth/loop");
      assert.equal(r.status, 404);
      assert.equal(
        await r.text(),
        "the loop probe is off: start the agent with BERTH_LOOP_PROBE=1\n",
      );
    } finally {
      f.close();
    }
  }
});

Deno.test("POST /v1/berth/gc runs the runtime's last-resort gc() and answers the memory after it", async () => {
  const g = globalThis as { gc?: (o?: unknown) => void };
  const before = g.gc;
  const calls: unknown[] = [];
  g.gc = (o) => calls.push(o);
  const f = fixture();
  try {
    const r = await f.app.request("/v1/berth/gc", { method: "POST" });
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.deepEqual(calls, [{ type: "major", execution: "sync", flavor: "last-resort" }]);
    assert.deepEqual(Object.keys(body).sort(), [
      "externalBytes",
      "heapTotalBytes",
      "heapUsedBytes",
      "rssBytes",
      "tookMs",
    ]);
    assert.ok(body.rssBytes > 0);
  } finally {
    if (before === undefined) delete g.gc;
    else g.gc = before;
    f.close();
  }
});

Deno.test("POST /v1/berth/gc answers 501 with the flag to use when gc() is not exposed", async () => {
  const g = globalThis as { gc?: (o?: unknown) => void };
  const before = g.gc;
  delete g.gc;
  const f = fixture();
  try {
    const r = await f.app.request("/v1/berth/gc", { method: "POST" });
    assert.equal(r.status, 501);
    assert.match(await r.text(), /--v8-flags=--expose-gc/);
  } finally {
    if (before !== undefined) g.gc = before;
    f.close();
  }
});
