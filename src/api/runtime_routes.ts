/**
 * This agent's runtime, for benches and debugging: `GET /v1/berth/loop` reads the event-loop
 * probe (src/lib/loop_probe.ts; the agent runs it with `BERTH_LOOP_PROBE=1`), `?reset` zeroes it
 * after the read; `POST /v1/berth/gc` forces a full garbage collection when the runtime exposes
 * one (`deno run --v8-flags=--expose-gc`) and answers the process's memory after it.
 *
 * @module
 */
import type { Hono } from "hono";
import type { LoopProbe } from "../lib/loop_probe.ts";
import { HttpError } from "./http_error.ts";

export function runtimeRoutes(app: Hono, probe: LoopProbe | null): void {
  app.get("/v1/berth/loop", (c) => {
    if (probe === null || !probe.running) {
      throw new HttpError(404, "the loop probe is off: start the agent with BERTH_LOOP_PROBE=1");
    }
    const report = probe.read();
    if (c.req.query("reset") !== undefined) probe.reset();
    return c.json(report);
  });

  app.post("/v1/berth/gc", (c) => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (typeof gc !== "function") {
      throw new HttpError(
        501,
        "no forced GC in this runtime: run the agent with deno run --v8-flags=--expose-gc",
      );
    }
    const started = performance.now();
    gc();
    const tookMs = Math.round((performance.now() - started) * 100) / 100;
    const m = Deno.memoryUsage();
    return c.json({
      tookMs,
      rssBytes: m.rss,
      heapUsedBytes: m.heapUsed,
      heapTotalBytes: m.heapTotal,
      externalBytes: m.external,
    });
  });
}
