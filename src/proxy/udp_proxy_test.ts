import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import dgram from "node:dgram";
import net from "node:net";
import type { Instance } from "../store/mod.ts";
import { unusedPort } from "../../test/ports.ts";
import { buildRouteTable } from "./routes.ts";
import { udpFlowsBudget, UdpProxy } from "./udp_proxy.ts";
import type { RequestRecord } from "./request_record.ts";
import { request, spec, startBackend, TestStore, withProxy } from "./_testing.ts";

interface Echo {
  port: number;
  /** Datagrams received, as `from-port:text`. */
  got: string[];
  close(): void;
}

/** A UDP server answering each datagram with `NAME:text`. */
async function udpEcho(name: string): Promise<Echo> {
  const s = dgram.createSocket("udp4");
  const e: Echo = { port: 0, got: [], close: () => s.close() };
  s.on("message", (m, r) => {
    e.got.push(`${r.port}:${m}`);
    s.send(Buffer.from(`${name}:${m}`), r.port, r.address);
  });
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  e.port = s.address().port;
  return e;
}

/** A UDP client socket; `ask` sends one datagram and waits for one answer (or "" after 2 s). */
async function udpClient() {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  const answers: string[] = [];
  let waiting: ((a: string) => void) | null = null;
  s.on("message", (m) => {
    const w = waiting;
    waiting = null;
    if (w) w(m.toString());
    else answers.push(m.toString());
  });
  return {
    port: s.address().port,
    ask(port: number, text: string): Promise<string> {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting = null;
          resolve("");
        }, 2_000);
        waiting = (a) => {
          clearTimeout(timer);
          resolve(a);
        };
        s.send(Buffer.from(text), port, "127.0.0.1");
      });
    },
    close: () => s.close(),
  };
}

const udpSpec = (id: string, port: number, udpPort: number, over: Record<string, string> = {}) =>
  spec({
    id,
    service: "dns",
    port,
    httpHosts: [],
    tags: ["udp"],
    meta: { "berth.udp.port": String(udpPort), ...over },
  });

/** Echo instances `a` and `b` and a free port for their UDP route. */
async function twoEchoes(): Promise<{ a: Echo; b: Echo; udpPort: number }> {
  return { a: await udpEcho("a"), b: await udpEcho("b"), udpPort: await unusedPort() };
}

function inst(s: ReturnType<typeof spec>): Instance {
  return { ...s, createIndex: 1, modifyIndex: 1 };
}

Deno.test("HttpProxy UDP route: each client flow stays on one instance, round robin over flows; replies come back", async () => {
  const { a, b, udpPort } = await twoEchoes();
  const ts = new TestStore();
  ts.register(udpSpec("dns-a:udp", a.port, udpPort));
  ts.register(udpSpec("dns-b:udp", b.port, udpPort));
  // Not tagged udp (the container's TCP port): never a UDP target.
  ts.register(
    spec({
      id: "dns-c",
      service: "dns",
      port: 9,
      httpHosts: [],
      meta: { "berth.udp.port": String(udpPort) },
    }),
  );
  const c1 = await udpClient();
  const c2 = await udpClient();
  try {
    await withProxy(ts, {}, async (_port, proxy) => {
      const first = await c1.ask(udpPort, "one");
      assert.match(first, /^[ab]:one$/);
      const who = first[0]!;
      for (let i = 0; i < 5; i++) assert.equal(await c1.ask(udpPort, `x${i}`), `${who}:x${i}`);
      const other = await c2.ask(udpPort, "two");
      assert.equal(other, `${who === "a" ? "b" : "a"}:two`);
      const report = proxy.report().udp!;
      assert.deepEqual(report.map((r) => [r.port, r.service, r.state, r.flows]), [[
        udpPort,
        "dns",
        "listening",
        2,
      ]]);
      // One flow socket per client: the instance saw one source port for all of c1's datagrams.
      const echo = who === "a" ? a : b;
      assert.equal(new Set(echo.got.map((g) => g.split(":")[0])).size, 1);
    });
  } finally {
    c1.close();
    c2.close();
    a.close();
    b.close();
  }
});

Deno.test("HttpProxy UDP route: a flow whose instance stops being served moves on its next datagram", async () => {
  const { a, b, udpPort } = await twoEchoes();
  const ts = new TestStore();
  ts.register(udpSpec("dns-a:udp", a.port, udpPort));
  ts.register(udpSpec("dns-b:udp", b.port, udpPort));
  const c = await udpClient();
  try {
    await withProxy(ts, {}, async (_port, proxy) => {
      const first = await c.ask(udpPort, "hi");
      const who = first[0]!;
      ts.deregister(`dns-${who}:udp`);
      await proxy.settled();
      assert.equal(await c.ask(udpPort, "again"), `${who === "a" ? "b" : "a"}:again`);
      // No instance left: datagrams are dropped and counted, not answered.
      ts.deregister(`dns-${who === "a" ? "b" : "a"}:udp`);
      await proxy.settled();
      assert.equal(await c.ask(udpPort, "void"), "");
    });
  } finally {
    c.close();
    a.close();
    b.close();
  }
});

Deno.test("UdpProxy forgets flows idle for berth.udp.idle-timeout and evicts the idlest beyond flowsMax", async () => {
  const a = await udpEcho("a");
  const udpPort = await unusedPort();
  let now = 1_000;
  const udp = new UdpProxy({ host: "127.0.0.1", log: () => {}, flowsMax: 2, now: () => now });
  const table = buildRouteTable([
    inst(udpSpec("dns-a:udp", a.port, udpPort, { "berth.udp.idle-timeout": "5s" })),
  ], []);
  const clients = [await udpClient(), await udpClient(), await udpClient()];
  try {
    await udp.update(table);
    const flows = () => udp.report([])[0]!.flows;
    assert.equal(await clients[0]!.ask(udpPort, "0"), "a:0");
    now += 1_000;
    assert.equal(await clients[1]!.ask(udpPort, "1"), "a:1");
    assert.equal(flows(), 2);
    now += 1_000;
    // A third flow: the one idle longest (client 0) goes.
    assert.equal(await clients[2]!.ask(udpPort, "2"), "a:2");
    assert.equal(flows(), 2);
    const sources = () => new Set(a.got.map((g) => g.split(":")[0])).size;
    assert.equal(sources(), 3);
    // Client 0 again: a new flow (a new source port at the instance).
    assert.equal(await clients[0]!.ask(udpPort, "0b"), "a:0b");
    assert.equal(sources(), 4);
    now += 4_999;
    udp.sweepIdle();
    assert.equal(flows(), 2, "not idle for 5 s yet");
    now += 2_000;
    udp.sweepIdle();
    assert.equal(flows(), 0);
  } finally {
    udp.close();
    for (const c of clients) c.close();
    a.close();
  }
});

Deno.test("UdpProxy refuses a port the agent's DNS listens on, one taken, and reports clashes", async () => {
  const taken = dgram.createSocket("udp4");
  await new Promise<void>((r) => taken.bind(0, "127.0.0.1", r));
  const takenPort = taken.address().port;
  const dnsPort = await unusedPort();
  const free = await unusedPort();
  const lines: string[] = [];
  const udp = new UdpProxy({
    host: "127.0.0.1",
    log: (l) => lines.push(l),
    reserved: [{ what: "dns", host: "127.0.0.1", port: dnsPort }, {
      what: "api",
      host: "127.0.0.1",
      port: free,
    }],
  });
  const table = buildRouteTable([
    inst(udpSpec("d1:udp", 1, dnsPort)),
    inst({ ...udpSpec("t1:udp", 1, takenPort), service: "busy" }),
    inst({ ...udpSpec("f1:udp", 1, free), service: "ok" }),
    inst({ ...udpSpec("f2:udp", 1, free), service: "zz" }),
  ], []);
  try {
    await udp.update(table);
    const r = udp.report(table.udpClashes);
    const want: [number, string, string][] = [
      [dnsPort, "dns", "failed"],
      [takenPort, "busy", "failed"],
      [free, "ok", "listening"],
      [free, "zz", "failed"],
    ];
    want.sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : 1));
    assert.deepEqual(r.map((x) => [x.port, x.service, x.state]), want);
    assert.ok(
      lines.some((l) =>
        /refused UDP route 127\.0\.0\.1:\d+ of service dns: port \d+ is the agent's own DNS listener/
          .test(l)
      ),
      lines.join("\n"),
    );
    assert.ok(
      lines.some((l) =>
        /cannot serve UDP route 127\.0\.0\.1:\d+ of service busy: cannot listen on .*EADDRINUSE/
          .test(l)
      ),
      lines.join("\n"),
    );
    assert.ok(
      table.conflicts.some((l) =>
        l === `UDP port ${free}: claimed by services ok and zz; ok keeps it`
      ),
      table.conflicts.join("\n"),
    );
  } finally {
    udp.close();
    taken.close();
  }
});

/** A client socket bound to `address` sending `text` to port `to` of 127.0.0.1 (no answer awaited). */
async function sender(address = "127.0.0.1") {
  const s = dgram.createSocket("udp4");
  const got: string[] = [];
  s.on("message", (m, r) => got.push(`${m} from ${r.address}:${r.port}`));
  await new Promise<void>((r) => s.bind(0, address, r));
  return {
    got,
    send: (to: number, text: string, host = "127.0.0.1") =>
      new Promise<void>((r) => s.send(Buffer.from(text), to, host, () => r())),
    close: () => s.close(),
  };
}

/** Waits until `ok()` or 2 s (then the assertion after it reports what is wrong). */
async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
}

Deno.test("udpFlowsBudget is a quarter of the open-file soft limit, 16 to 4096; unknown counts as 1024", () => {
  assert.equal(udpFlowsBudget(1024), 256);
  assert.equal(udpFlowsBudget(256), 64);
  assert.equal(udpFlowsBudget(20), 16);
  assert.equal(udpFlowsBudget(1_048_576), 4096);
  assert.equal(udpFlowsBudget(null), 256);
});

Deno.test("UdpProxy caps flows per client address (evicting that client's idlest) and over every route", async () => {
  const a = await udpEcho("a");
  const [p1, p2] = [await unusedPort(), await unusedPort()];
  const udp = new UdpProxy({
    host: "127.0.0.1",
    log: () => {},
    flowsMax: 4,
    flowsPerClientMax: 2,
  });
  const table = buildRouteTable([
    inst(udpSpec("dns-a:udp", a.port, p1)),
    inst({ ...udpSpec("o-a:udp", a.port, p2), service: "other" }),
  ], []);
  const flows = () => udp.report([]).map((r) => r.flows);
  const other = await udpClient();
  // One client address, many source ports (each a new flow).
  const spray = await Promise.all([1, 2, 3, 4, 5].map(() => sender("127.0.0.3")));
  try {
    await udp.update(table);
    assert.equal(await other.ask(p1, "o"), "a:o");
    for (const [i, s] of spray.entries()) {
      await s.send(i % 2 === 0 ? p1 : p2, `s${i}`);
      await until(() => s.got.length === 1);
      assert.equal(s.got.length, 1, `sender ${i} answered`);
    }
    // The sprayer holds 2 flows over both routes; the other client's flow stayed.
    assert.equal(flows().reduce((x, y) => x + y), 3);
    assert.equal(await other.ask(p1, "o2"), "a:o2");
    const sources = new Set(
      a.got.filter((g) => g.endsWith(":o") || g.endsWith(":o2"))
        .map((g) => g.split(":")[0]),
    );
    assert.equal(sources.size, 1, "the other client's flow was not evicted");
    // Three more client addresses: 5 flows wanted, 4 at most over every route.
    const more = await Promise.all(["127.0.0.4", "127.0.0.5", "127.0.0.6"].map(sender));
    for (const s of more) {
      await s.send(p2, "m");
      await until(() => s.got.length === 1);
    }
    assert.equal(flows().reduce((x, y) => x + y), 4);
    for (const s of more) s.close();
  } finally {
    udp.close();
    other.close();
    for (const s of spray) s.close();
    a.close();
  }
});

Deno.test("UdpProxy forwards to the client only replies from the instance's address and port", async () => {
  const a = await udpEcho("a");
  const udpPort = await unusedPort();
  const udp = new UdpProxy({ host: "127.0.0.1", log: () => {} });
  const c = await sender();
  // Another host using the instance's port.
  const forger = dgram.createSocket("udp4");
  await new Promise<void>((r) => forger.bind(a.port, "127.0.0.9", r));
  try {
    await udp.update(buildRouteTable([inst(udpSpec("dns-a:udp", a.port, udpPort))], []));
    await c.send(udpPort, "hi");
    await until(() => c.got.length === 1);
    assert.deepEqual(c.got, [`a:hi from 127.0.0.1:${udpPort}`]);
    const flowPort = Number(a.got[0]!.split(":")[0]);
    await new Promise<void>((r) =>
      forger.send(Buffer.from("INJECTED"), flowPort, "127.0.0.1", () => r())
    );
    await c.send(udpPort, "again");
    await until(() => c.got.length >= 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(c.got, [
      `a:hi from 127.0.0.1:${udpPort}`,
      `a:again from 127.0.0.1:${udpPort}`,
    ]);
  } finally {
    udp.close();
    c.close();
    forger.close();
    a.close();
  }
});

Deno.test("UdpProxy logs failed sends at most once a minute, with the count", async () => {
  const udpPort = await unusedPort();
  const lines: string[] = [];
  let now = 0;
  const udp = new UdpProxy({ host: "127.0.0.1", log: (l) => lines.push(l), now: () => now });
  // Broadcast without SO_BROADCAST: every send to the instance fails (EACCES).
  const table = buildRouteTable([
    inst({ ...udpSpec("b:udp", 9, udpPort), address: "255.255.255.255" }),
  ], []);
  const c = await sender();
  try {
    await udp.update(table);
    for (let i = 0; i < 5; i++) await c.send(udpPort, `x${i}`);
    await until(() => lines.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0]!, /^proxy: UDP flow: \S/);
    now += 60_000;
    await c.send(udpPort, "later");
    await until(() => lines.length > 1);
    assert.match(
      lines[1] ?? "",
      /^proxy: UDP flow: .* \(\d+ send errors since the last such line\)$/,
    );
  } finally {
    udp.close();
    c.close();
  }
});

Deno.test("UdpProxy on a non-wildcard address answers from that address; removing the route frees the port", async () => {
  const a = await udpEcho("a");
  const udpPort = await unusedPort();
  const udp = new UdpProxy({ host: "127.0.0.2", log: () => {} });
  const c = await sender("127.0.0.5");
  try {
    await udp.update(buildRouteTable([inst(udpSpec("dns-a:udp", a.port, udpPort))], []));
    await c.send(udpPort, "hi", "127.0.0.2");
    await until(() => c.got.length === 1);
    assert.deepEqual(c.got, [`a:hi from 127.0.0.2:${udpPort}`]);
    await udp.update(buildRouteTable([], []));
    assert.deepEqual(udp.report([]), []);
    const again = dgram.createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      again.once("error", reject);
      again.bind(udpPort, "127.0.0.2", resolve);
    });
    again.close();
  } finally {
    udp.close();
    c.close();
    a.close();
  }
});

Deno.test("UdpProxy with berth.lb=least_conn picks the instance with the fewest open flows", async () => {
  const { a, b, udpPort } = await twoEchoes();
  let now = 1_000;
  const udp = new UdpProxy({ host: "127.0.0.1", log: () => {}, now: () => now });
  const meta = { "berth.lb": "least_conn", "berth.udp.idle-timeout": "5s" };
  const table = buildRouteTable([
    inst(udpSpec("dns-a:udp", a.port, udpPort, meta)),
    inst(udpSpec("dns-b:udp", b.port, udpPort, meta)),
  ], []);
  const [c1, c2, c3] = [await udpClient(), await udpClient(), await udpClient()];
  try {
    await udp.update(table);
    const first = (await c1.ask(udpPort, "1"))[0];
    const second = (await c2.ask(udpPort, "2"))[0];
    assert.notEqual(first, second);
    // c1 stays active, c2's flow goes idle and is forgotten: `second` has no flow left.
    now += 4_000;
    assert.equal(await c1.ask(udpPort, "1b"), `${first}:1b`);
    now += 2_000;
    udp.sweepIdle();
    assert.equal(udp.report([])[0]!.flows, 1);
    // Round robin would go back to `first`; the fewest flows is `second`.
    assert.equal(await c3.ask(udpPort, "3"), `${second}:3`);
  } finally {
    udp.close();
    for (const c of [c1, c2, c3]) c.close();
    a.close();
    b.close();
  }
});

/** One HTTP/1.0 GET through a TCP route: the reply's status line. */
function tcpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => s.write("GET / HTTP/1.0\r\nHost: x\r\n\r\n"));
    let got = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => got += d);
    s.on("end", () => resolve(got.split("\r\n")[0]!));
    s.on("error", reject);
  });
}

Deno.test("HttpProxy: instances tagged udp serve the UDP route only, never HTTP, TCP or edge-domain requests", async () => {
  const web = await startBackend("web");
  const dns = await udpEcho("u"); // UDP only: a TCP connect to its port is refused
  const [udpPort, tcpPort, dnsUdpPort] = [
    await unusedPort(),
    await unusedPort(),
    await unusedPort(),
  ];
  const ts = new TestStore();
  // `-p ::80 -p ::80/udp` with no retries: a connect to the UDP instance would be a 502.
  const meta = { "berth.udp.port": String(udpPort), "berth.http.retries": "0" };
  ts.register(spec({ id: "n:mix:80", service: "mix", port: web.port, tcpPort, meta }));
  ts.register(
    spec({
      id: "n:mix:80:udp",
      service: "mix",
      port: dns.port,
      httpHosts: [],
      tags: ["udp"],
      meta,
    }),
  );
  // A service of UDP instances only: no HTTP route, not even the edge-domain one.
  ts.register(udpSpec("n:dns:53:udp", dns.port, dnsUdpPort));
  const c = await udpClient();
  const seen: RequestRecord[] = [];
  try {
    await withProxy(
      ts,
      { edgeDomain: "edge.test", observers: [{ end: (r) => seen.push(r) }] },
      async (port) => {
        for (let i = 0; i < 6; i++) {
          const host = i % 2 === 0 ? "web.test" : "mix.edge.test";
          const r = await request(port, "/", { host });
          assert.equal(`${r.status} ${r.body}`, "200 web /", host);
        }
        assert.deepEqual(seen.map((r) => [r.instance, r.attempts]), Array(6).fill(["n:mix:80", 1]));
        for (let i = 0; i < 4; i++) assert.equal(await tcpGet(tcpPort), "HTTP/1.1 200 OK");
        assert.equal(await c.ask(udpPort, "hi"), "u:hi");
        assert.equal((await request(port, "/", { host: "dns.edge.test" })).status, 404);
        assert.equal(await c.ask(dnsUdpPort, "ho"), "u:ho");
      },
    );
  } finally {
    c.close();
    dns.close();
    await web.close();
  }
});
