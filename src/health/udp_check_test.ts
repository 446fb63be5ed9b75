import assert from "node:assert/strict";
import { lookup } from "node:dns/promises";
import { probe, type ProbeTarget } from "./probe.ts";
import { defaultUdpProber, nodeUdpExchange, type UdpProber } from "./udp_check.ts";
import { closedUdpPort, udpServer } from "./_testing.ts";

const udp = (port: number, payload: string, expect?: string): ProbeTarget => ({
  kind: "udp",
  address: "127.0.0.1",
  port,
  payload,
  ...(expect === undefined ? {} : { expect }),
});

const FFI = defaultUdpProber();
const NODE_DGRAM: UdpProber = { exchange: nodeUdpExchange, seesRefusals: false };

Deno.test("probe() udp: the FFI prober is the default here (tests run with --allow-ffi)", () => {
  assert.equal(FFI.seesRefusals, true);
});

Deno.test("probe() udp: an echo's reply passes, and the datagram is the payload unescaped", async () => {
  const s = await udpServer((t) => t);
  try {
    const r = await probe(udp(s.port, "PING\\r\\n"), { timeoutMs: 2000 });
    assert.deepEqual(r, { status: "passing", output: `UDP 127.0.0.1:${s.port}: reply` });
    assert.deepEqual(s.got, ["PING\r\n"]);
  } finally {
    await s.close();
  }
});

Deno.test("probe() udp: a closed port fails at once with port unreachable, not by timeout", async () => {
  const port = await closedUdpPort();
  // Without the ICMP refusal this run would pass after a minute of silence.
  const r = await probe(udp(port, ""), { timeoutMs: 60_000 });
  assert.deepEqual(r, {
    status: "critical",
    output: `UDP 127.0.0.1:${port}: port unreachable (ICMP)`,
  });
});

Deno.test("probe() udp: a silent port passes after the timeout (Consul's UDP check)", async () => {
  const s = await udpServer(() => null);
  try {
    const r = await probe(udp(s.port, "hello"), { timeoutMs: 200 });
    assert.deepEqual(r, {
      status: "passing",
      output: `UDP 127.0.0.1:${s.port}: no reply within 200ms, no refusal`,
    });
    assert.deepEqual(s.got, ["hello"]);
  } finally {
    await s.close();
  }
});

Deno.test("probe() udp with expect: a reply containing it passes, another reply or silence fails", async () => {
  const s = await udpServer((t) => t === "PING" ? "+PONG\n" : t === "QUIET" ? null : "-ERR");
  try {
    const what = `UDP 127.0.0.1:${s.port}`;
    assert.deepEqual(await probe(udp(s.port, "PING", "PONG"), { timeoutMs: 2000 }), {
      status: "passing",
      output: `${what}: reply`,
    });
    assert.deepEqual(await probe(udp(s.port, "OTHER", "PONG"), { timeoutMs: 2000 }), {
      status: "critical",
      output: `${what}: reply without the expected text`,
    });
    assert.deepEqual(await probe(udp(s.port, "QUIET", "PONG"), { timeoutMs: 200 }), {
      status: "critical",
      output: `${what}: no reply within 200ms`,
    });
  } finally {
    await s.close();
  }
});

Deno.test("probe() udp without FFI (node:dgram): a reply passes; a closed port is only silence, and says so", async () => {
  const s = await udpServer((t) => t);
  try {
    const r = await probe(udp(s.port, "x"), { timeoutMs: 2000, udp: NODE_DGRAM });
    assert.deepEqual(r, { status: "passing", output: `UDP 127.0.0.1:${s.port}: reply` });
  } finally {
    await s.close();
  }
  const port = await closedUdpPort();
  const r = await probe(udp(port, "x"), { timeoutMs: 200, udp: NODE_DGRAM });
  assert.deepEqual(r, {
    status: "passing",
    output: `UDP 127.0.0.1:${port}: no reply within 200ms ` +
      "(ICMP refusals not seen: FFI unavailable)",
  });
});

Deno.test("probe() udp: a stop (signal) ends a run waiting on a silent port", async () => {
  const s = await udpServer(() => null);
  try {
    const ac = new AbortController();
    const p = probe(udp(s.port, "x"), { timeoutMs: 60_000, signal: ac.signal });
    while (s.got.length === 0) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    assert.deepEqual(await p, { status: "critical", output: `UDP 127.0.0.1:${s.port}: stopped` });
  } finally {
    await s.close();
  }
});

Deno.test("probe() udp: a host name is resolved first (a registered check's host:port)", async () => {
  const s = await udpServer((t) => t);
  try {
    const r = await probe({ ...udp(s.port, "x"), address: "localhost" }, { timeoutMs: 2000 });
    // The echo listens on 127.0.0.1; where localhost is ::1 first, that port is closed there.
    const v4 = (await lookup("localhost")).address === "127.0.0.1";
    assert.equal(
      r.output,
      `UDP localhost:${s.port}: ${v4 ? "reply" : "port unreachable (ICMP)"}`,
    );
  } finally {
    await s.close();
  }
});

Deno.test("probe() udp: a host lookup that outlasts the timeout fails, nothing sent (not a silence that passes)", async () => {
  // The timeout fires before any lookup can answer (a slow or unreachable resolver).
  const timers = { setTimeout: (fn: () => void) => queueMicrotask(fn), clearTimeout() {} };
  const exchanges: string[] = [];
  const prober: UdpProber = {
    exchange: (to, _payload, signal) => {
      exchanges.push(to.address);
      signal.throwIfAborted(); // as both exchanges do
      return Promise.resolve({ kind: "reply", data: new Uint8Array() });
    },
    seesRefusals: true,
  };
  for (const address of ["localhost", "no-such-host.invalid"]) {
    const r = await probe({ ...udp(9, ""), address }, { timeoutMs: 1, timers, udp: prober });
    assert.deepEqual(r, {
      status: "critical",
      output: `UDP ${address}:9: host lookup timed out after 1ms, nothing sent`,
    });
  }
  assert.deepEqual(exchanges, []);
});

Deno.test("probe() udp: a host name that does not resolve fails with one line", async () => {
  const r = await probe({ ...udp(9, "x"), address: "no-such-host.invalid" }, { timeoutMs: 5000 });
  assert.equal(r.status, "critical");
  assert.equal(r.output, "UDP no-such-host.invalid:9: cannot resolve host");
});
