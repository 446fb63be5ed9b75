/**
 * A request record for the access log's tests.
 *
 * @module
 */
import type { RequestRecord } from "./request_record.ts";

/** A forwarded GET's record, with `over` in place. */
export function record(over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    time: Date.UTC(2026, 11, 2, 5, 10, 0, 123),
    member: "node-1",
    client: "10.0.0.7",
    method: "GET",
    host: "app.test",
    path: "/a?b=1",
    proto: "HTTP/1.1",
    status: 200,
    bytesIn: 0,
    bytesOut: 512,
    service: "app",
    route: "app.test/",
    instance: "app-1",
    attempts: 1,
    durationMs: 3,
    tlsVersion: null,
    sni: null,
    requestId: "3f9c0a61d2e4-1k7",
    rawHeaders: ["Host", "app.test", "User-Agent", "curl/8.5.0", "Referer", "https://r.test/"],
    ...over,
  };
}
