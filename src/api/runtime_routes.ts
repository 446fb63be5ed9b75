/**
 * This agent's runtime, for benches and debugging: `GET /v1/berth/loop` reads the event-loop
 * probe (src/lib/loop_probe.ts; the agent runs it with `BERTH_LOOP_PROBE=1`) and, as
 * `heartbeatGaps`, the intervals between the raft heartbeats this member received from its
 * leader (src/lib/gap_recorder.ts; none on the leader itself); `?reset` zeroes both after the
 * read; `POST /v1/berth/gc` forces V8's last-resort garbage collection (every
 * collectable object, and free heap pages returned to the OS: a plain full GC keeps the young
 * generation's and pooled pages, tens of MiB after a busy spell) when the runtime exposes gc()
 * (`deno run --v8-flags=--expose-gc`), and answers the process's memory after it.
 *
 * @module
 */
import type { Hono } from "hono";
import type { LoopProbe } from "../lib/loop_probe.ts";
import type { GapRecorder } from "../lib/gap_recorder.ts";
import { HttpError } from "./http_error.ts";

/** The options of V8's exposed gc() (its gc extension). */
interface GcOptions {
  type: "major" | "minor";
  execution: "sync" | "async";
  flavor: "regular" | "last-resort";
}

export function runtimeRoutes(
  app: Hono,
  probe: LoopProbe | null,
  heartbeats: GapRecorder | null = null,
): void {
  app.get("/v1/berth/loop", (c) => {
    if (probe === null || !probe.running) {
      throw new HttpError(404, "the loop probe is off: start the agent with BERTH_LOOP_PROBE=1");
    }
    const report = {
      ...probe.read(),
      ...(heartbeats === null ? {} : { heartbeatGaps: heartbeats.read() }),
    };
    if (c.req.query("reset") !== undefined) {
      probe.reset();
      heartbeats?.reset();
    }
    return c.json(report);
  });

  app.post("/v1/berth/gc", (c) => {
    const gc = (globalThis as { gc?: (o?: GcOptions) => void }).gc;
    if (typeof gc !== "function") {
      throw new HttpError(
        501,
        "no forced GC in this runtime: run the agent with deno run --v8-flags=--expose-gc",
      );
    }
    const started = performance.now();
    gc({ type: "major", execution: "sync", flavor: "last-resort" });
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
