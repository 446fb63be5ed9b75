import assert from "node:assert/strict";
import { REQUEST_HEADERS, RESPONSE_HEADERS } from "./headers.ts";
import { built, settingsOf, stateOf } from "./_request_testing.ts";
import type { DispatchSink } from "../conn_info.ts";

Deno.test("REQUEST_HEADERS: removes listed headers, sets others replacing the client's", () => {
  const m = built(REQUEST_HEADERS, {
    "berth.http.request-header.X-Env": "prod",
    "berth.http.request-header.x-tenant": "t1",
    "berth.http.request-headers.remove": "cookie,x-forwarded-for",
  });
  const s = stateOf({
    headers: ["host", "a.test", "Cookie", "a=1", "X-ENV", "dev", "x-forwarded-for", "1.2.3.4"],
  });
  assert.equal(m.request!(s), null);
  assert.deepEqual(s.headers, ["host", "a.test", "x-env", "prod", "x-tenant", "t1"]);
});

Deno.test("REQUEST_HEADERS: off without keys; stored entries that no longer parse are skipped", () => {
  assert.equal(REQUEST_HEADERS.build(settingsOf({})), null);
  assert.equal(REQUEST_HEADERS.build(settingsOf({ "berth.http.request-header.Host": "x" })), null);
  const m = built(REQUEST_HEADERS, {
    "berth.http.request-header.Content-Length": "0",
    "berth.http.request-header.X-A": "1",
  });
  const s = stateOf({ headers: [] });
  m.request!(s);
  assert.deepEqual(s.headers, ["x-a", "1"]);
});

/** A sink recording the heads written to it. */
function recordingSink(): DispatchSink & { heads: [number, readonly string[]][] } {
  const heads: [number, readonly string[]][] = [];
  return {
    heads,
    destroyed: false,
    headersSent: false,
    writableEnded: false,
    shouldKeepAlive: true,
    onAbort: null,
    writeHead: (status: number, _reason: string, headers: readonly string[]) => {
      heads.push([status, headers]);
    },
    write: () => true,
    end: () => {},
    destroy: () => {},
    once: () => {},
  };
}

Deno.test("RESPONSE_HEADERS: every response head loses the listed headers and gets the set ones", () => {
  const m = built(RESPONSE_HEADERS, {
    "berth.http.response-header.X-Frame-Options": "DENY",
    "berth.http.response-headers.remove": "Server,x-powered-by",
  });
  assert.equal(m.request, undefined);
  const inner = recordingSink();
  const sink = m.response!(stateOf(), inner);
  sink.writeHead(200, "", [
    "Server",
    "nginx",
    "X-Powered-By",
    "php",
    "x-frame-options",
    "SAMEORIGIN",
    "content-type",
    "text/plain",
  ]);
  assert.deepEqual(inner.heads, [[200, [
    "content-type",
    "text/plain",
    "x-frame-options",
    "DENY",
  ]]]);
  sink.shouldKeepAlive = false;
  assert.equal(inner.shouldKeepAlive, false, "the rest passes through");
});
