import assert from "node:assert/strict";
import { formatHostPort, isIp, parseHostPort } from "./host_port.ts";

Deno.test("parseHostPort() reads IPv4, bracketed IPv6 and localhost", async (t) => {
  const cases: [string, number | undefined, { host: string; port: number }][] = [
    ["127.0.0.1:8300", undefined, { host: "127.0.0.1", port: 8300 }],
    ["[::1]:53", undefined, { host: "::1", port: 53 }],
    ["[fe80::1:2]:65535", undefined, { host: "fe80::1:2", port: 65535 }],
    ["localhost:8500", undefined, { host: "127.0.0.1", port: 8500 }],
    ["127.0.0.2", 53, { host: "127.0.0.2", port: 53 }],
    ["[::1]", 8300, { host: "::1", port: 8300 }],
    ["::1", 8300, { host: "::1", port: 8300 }],
  ];
  for (const [text, def, want] of cases) {
    await t.step(text, () => assert.deepEqual(parseHostPort(text, def), want));
  }
});

Deno.test("parseHostPort() rejects bad hosts and ports", async (t) => {
  const cases: [string, number | undefined, RegExp][] = [
    ["127.0.0.1:0", undefined, /not in 1\.\.65535/],
    ["127.0.0.1:65536", undefined, /not in 1\.\.65535/],
    ["127.0.0.1:8x", undefined, /not in 1\.\.65535/],
    ["127.0.0.1:", undefined, /not in 1\.\.65535/],
    ["256.0.0.1:1", undefined, /not an IP address/],
    ["example.com:80", undefined, /not an IP address/],
    ["[127.0.0.1]:80", undefined, /not an IPv6 address/],
    ["[::1", undefined, /not an IP address/],
    ["127.0.0.1", undefined, /missing :port/],
    ["::1", undefined, /missing :port/],
    ["", 53, /not an IP address/],
    // What the text brought is quoted with its control characters escaped (found by a fuzz).
    ["a\nb\u0000:80", undefined, /"a\\nb\\u0000" is not an IP address$/],
    ["[\u001b]:80", undefined, /"\\u001b" in brackets is not an IPv6 address$/],
    ["127.0.0.1:\r", undefined, /port "\\r" is not in 1\.\.65535$/],
  ];
  for (const [text, def, why] of cases) {
    await t.step(JSON.stringify(text), () => assert.throws(() => parseHostPort(text, def), why));
  }
});

Deno.test("formatHostPort() brackets IPv6 so parseHostPort() reads it back", () => {
  for (const a of [{ host: "10.0.0.1", port: 1 }, { host: "::1", port: 53 }]) {
    assert.deepEqual(parseHostPort(formatHostPort(a)), a);
  }
  assert.equal(formatHostPort({ host: "::1", port: 53 }), "[::1]:53");
});

Deno.test("isIp() accepts addresses only", () => {
  assert.ok(isIp("10.1.2.3") && isIp("::") && isIp("fe80::1"));
  assert.ok(!isIp("10.1.2") && !isIp("host") && !isIp("[::1]") && !isIp("1.2.3.4:5"));
});
