import assert from "node:assert/strict";
import type { DispatchSink } from "../conn_info.ts";
import type { PlainAnswer } from "../exchange.ts";
import { RouteSettings } from "../route_settings.ts";
import {
  buildChain,
  EMPTY_CHAIN,
  type Middleware,
  type MiddlewarePart,
  type RequestState,
  runRequestStages,
  SinkWrapper,
  wrapResponse,
} from "./pipeline.ts";

function part(name: string, m: Omit<Middleware, "name"> | null): MiddlewarePart {
  return { name, build: () => m === null ? null : { name, ...m } };
}

function state(): RequestState {
  return {
    req: { method: "GET", url: "/a", rawHeaders: [], remoteAddress: "10.0.0.1", body: null },
    conn: { secure: false },
    route: null as unknown as RequestState["route"],
    client: "10.0.0.1",
    host: "web.test",
    prefix: "/",
    url: "/a",
    headers: [],
    requestId: "id-1",
  };
}

/** Runs the stages and resolves with the answer `done` got and how often it was called. */
function run(
  parts: MiddlewarePart[],
  s: RequestState,
  log: string[] = [],
): Promise<{ answer: PlainAnswer | null; calls: number; sync: boolean }> {
  return new Promise((resolve) => {
    let calls = 0;
    let sync = true;
    runRequestStages(buildChain(parts, RouteSettings.EMPTY), s, (answer) => {
      const syncAtCall = sync;
      calls++;
      // Resolved a moment later, so that a second call would show in `calls`.
      if (calls === 1) setTimeout(() => resolve({ answer, calls, sync: syncAtCall }), 10);
    }, { log: (l) => log.push(l) });
    sync = false;
  });
}

Deno.test("buildChain() keeps the order of the parts, skips those off, splits by stage", () => {
  const req = () => null;
  const res = (_s: RequestState, r: DispatchSink) => r;
  const chain = buildChain([
    part("a", { request: req }),
    part("off", null),
    part("b", { response: res }),
    part("c", { request: req, response: res }),
  ], RouteSettings.EMPTY);
  assert.deepEqual(chain.names, ["a", "b", "c"]);
  assert.deepEqual(chain.request.map((m) => m.name), ["a", "c"]);
  assert.deepEqual(chain.response.map((m) => m.name), ["b", "c"]);
});

Deno.test("buildChain() is EMPTY_CHAIN when no part is on", () => {
  assert.equal(buildChain([part("off", null)], RouteSettings.EMPTY), EMPTY_CHAIN);
  assert.equal(buildChain([], RouteSettings.EMPTY), EMPTY_CHAIN);
});

Deno.test("runRequestStages() runs synchronous stages in order in the same turn and goes on with null", async () => {
  const seen: string[] = [];
  const s = state();
  const r = await run([
    part("strip", {
      request: (s) => {
        seen.push("strip");
        s.url = s.url.slice(2) || "/";
        return null;
      },
    }),
    part("headers", {
      request: (s) => {
        seen.push(`headers ${s.url}`);
        s.headers.push("x-a", "1");
        return null;
      },
    }),
  ], s);
  assert.deepEqual(seen, ["strip", "headers /"]);
  assert.deepEqual(r, { answer: null, calls: 1, sync: true });
  assert.deepEqual(s.headers, ["x-a", "1"]);
});

Deno.test("runRequestStages() stops at the first answer: later stages do not run", async () => {
  let later = false;
  const r = await run([
    part("allow", { request: () => ({ status: 403, text: "forbidden" }) }),
    part("auth", {
      request: () => {
        later = true;
        return null;
      },
    }),
  ], state());
  assert.deepEqual(r, { answer: { status: 403, text: "forbidden" }, calls: 1, sync: true });
  assert.equal(later, false);
});

Deno.test("runRequestStages() waits for a stage's promise, then runs the next ones", async () => {
  const seen: string[] = [];
  const r = await run([
    part("auth", {
      request: async () => {
        await new Promise((r) => setTimeout(r, 1));
        seen.push("auth");
        return null;
      },
    }),
    part("limit", {
      request: () => {
        seen.push("limit");
        return { status: 429, text: "slow down" };
      },
    }),
  ], state());
  assert.deepEqual(seen, ["auth", "limit"]);
  assert.deepEqual(r, { answer: { status: 429, text: "slow down" }, calls: 1, sync: false });
});

Deno.test("runRequestStages() answers 500 and logs when a stage throws or its promise rejects", async () => {
  for (
    const request of [
      () => {
        throw new Error("boom");
      },
      () => Promise.reject(new Error("boom")),
    ]
  ) {
    const log: string[] = [];
    const r = await run([part("auth", { request })], state(), log);
    assert.equal(r.answer?.status, 500);
    assert.equal(r.calls, 1);
    assert.deepEqual(log, ["proxy: middleware auth failed: boom"]);
  }
});

Deno.test("runRequestStages() logs and aborts when done throws after an awaited stage (no unhandled rejection)", async () => {
  for (const answer of [null, { status: 401, text: "no" }]) {
    const log: string[] = [];
    let aborted = 0;
    const settled = Promise.withResolvers<void>();
    const parts = [part("auth", { request: () => Promise.resolve(answer) })];
    runRequestStages(buildChain(parts, RouteSettings.EMPTY), state(), () => {
      queueMicrotask(() => settled.resolve());
      throw new Error("sink closed");
    }, { log: (l) => log.push(l), abort: () => aborted++ });
    await settled.promise;
    await Promise.resolve();
    assert.deepEqual(log, ["proxy: request after middleware auth failed: sink closed"]);
    assert.equal(aborted, 1);
  }
});

/** A sink that logs the calls it gets. */
function recordingSink(log: string[]): DispatchSink {
  return {
    destroyed: false,
    headersSent: false,
    writableEnded: false,
    shouldKeepAlive: true,
    onAbort: null,
    writeHead: (status, _reason, headers) => log.push(`head ${status} ${headers.join(",")}`),
    write: (chunk) => {
      log.push(`write ${chunk.length}`);
      return true;
    },
    end: () => log.push("end"),
    destroy: () => log.push("destroy"),
    once: () => {},
  };
}

/** A response stage adding header `name: 1` (after those the instance sent). */
function addHeader(name: string): MiddlewarePart {
  return part(name, {
    response: (_s, res) =>
      new class extends SinkWrapper {
        override writeHead(status: number, reason: string, headers: readonly string[]): void {
          super.writeHead(status, reason, [...headers, name, "1"]);
        }
      }(res),
  });
}

Deno.test("wrapResponse() lets the first response stage see the instance's response first", () => {
  const log: string[] = [];
  const chain = buildChain([addHeader("first"), addHeader("second")], RouteSettings.EMPTY);
  const res = wrapResponse(chain, state(), recordingSink(log));
  res.writeHead(200, "", ["content-type", "text/plain"]);
  res.end();
  // "first" saw the response before "second", which is nearer the client.
  assert.deepEqual(log, ["head 200 content-type,text/plain,first,1,second,1", "end"]);
});

Deno.test("wrapResponse() of the empty chain is the sink itself", () => {
  const sink = recordingSink([]);
  assert.equal(wrapResponse(EMPTY_CHAIN, state(), sink), sink);
});

Deno.test("SinkWrapper passes onAbort, shouldKeepAlive and forwarded to the inner sink; writeTrailers only when it has it", () => {
  const inner = recordingSink([]);
  const w = new SinkWrapper(inner);
  const abort = () => {};
  w.onAbort = abort;
  w.shouldKeepAlive = false;
  w.forwarded = true;
  assert.equal(inner.onAbort, abort);
  assert.equal(inner.shouldKeepAlive, false);
  assert.equal(inner.forwarded, true);
  assert.equal(w.writeTrailers, undefined);
  const trailers: string[][] = [];
  const h2 = new SinkWrapper({ ...inner, writeTrailers: (t) => trailers.push([...t]) });
  h2.writeTrailers!(["grpc-status", "0"]);
  assert.deepEqual(trailers, [["grpc-status", "0"]]);
});
