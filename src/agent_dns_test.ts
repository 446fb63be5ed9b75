import assert from "node:assert/strict";
import { dnsNote, threadsText } from "./agent_dns.ts";

Deno.test("threadsText: one thread singular, more plural", () => {
  assert.equal(threadsText(1), "1 thread");
  assert.equal(threadsText(4), "4 threads");
});

Deno.test("dnsNote: the main thread takes UDP through node:dgram", () => {
  assert.equal(dnsNote(["dgram"], null), "1 thread, UDP through node:dgram");
});

Deno.test("dnsNote: every worker on FFI says UDP through FFI", () => {
  assert.equal(dnsNote(["ffi", "ffi"], null), "2 threads, UDP through FFI");
});

Deno.test("dnsNote: without FFI, worker 0 alone on node:dgram, with the reason", () => {
  assert.equal(
    dnsNote(["dgram", "none", "none"], "no libc"),
    "3 threads, UDP through node:dgram in 1: FFI not available (no libc)",
  );
});

Deno.test("dnsNote: workers taking no UDP say so", () => {
  assert.equal(dnsNote(["none", "none"], null), "2 threads, no UDP");
});
