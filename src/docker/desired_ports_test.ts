import assert from "node:assert/strict";
import { containerInstances, UDP_EXPECT_BAD } from "./desired.ts";
import { container, OPTS } from "./_desired_testing.ts";

const TWO_PORTS = {
  "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "32768" }],
  "8080/tcp": [{ HostIp: "0.0.0.0", HostPort: "32769" }],
};

function byPort(labels: Record<string, string>, o = OPTS) {
  const r = containerInstances(container({ labels, ports: TWO_PORTS }), o);
  const at = (p: number) => r.instances.find((i) => i.meta["container-port"] === `${p}/tcp`)!;
  return { r, p80: at(80), p8080: at(8080) };
}

Deno.test("containerInstances() berth.http.<port>.host/.path give each port its own routes", () => {
  const { r, p80, p8080 } = byPort({
    "berth.http.80.host": "www.test, WWW2.test",
    "berth.http.8080.host": "admin.test",
    "berth.http.8080.path": "/admin",
  });
  assert.deepEqual(r.problems, []);
  assert.deepEqual(p80.httpHosts, ["www.test", "www2.test"]);
  assert.equal(p80.httpPath, null);
  assert.deepEqual(p8080.httpHosts, ["admin.test"]);
  assert.equal(p8080.httpPath, "/admin");
});

Deno.test("containerInstances() per-port labels override the container's; other ports keep them", () => {
  const { p80, p8080 } = byPort({
    "berth.http.host": "all.test",
    "berth.http.path": "/all",
    "berth.tls": "acme",
    "berth.http.8080.host": "admin.test",
    "berth.http.8080.path": "/admin",
  });
  assert.deepEqual(p80.httpHosts, ["all.test"]);
  assert.equal(p80.httpPath, "/all");
  assert.equal(p80.meta["berth.tls"], "acme");
  assert.deepEqual(p8080.httpHosts, ["admin.test"]);
  assert.equal(p8080.httpPath, "/admin");
  assert.equal(p8080.meta["berth.tls"], "acme");
});

Deno.test("containerInstances() berth.http.<port>.tls=acme asks for certificates for that port only", () => {
  const { p80, p8080 } = byPort({ "berth.http.8080.tls": "ACME", "berth.http.host": "a.test" });
  assert.equal(p80.meta["berth.tls"], undefined);
  assert.equal(p8080.meta["berth.tls"], "acme");
});

Deno.test("containerInstances() a bad per-port value: one problem, the container's setting is used", () => {
  const { r, p8080 } = byPort({
    "berth.http.host": "all.test",
    "berth.http.8080.host": "bad host",
    "berth.http.8080.tls": "letsencrypt",
  });
  assert.deepEqual(p8080.httpHosts, ["all.test"]);
  assert.equal(p8080.meta["berth.tls"], undefined);
  assert.deepEqual(r.problems.map((p) => [p.label, p.message]), [
    [
      "berth.http.8080.host",
      'berth.http.8080.host="bad host": expected a host name; using the container\'s hosts',
    ],
    [
      "berth.http.8080.tls",
      'berth.http.8080.tls="letsencrypt": expected acme; using the container\'s berth.tls',
    ],
  ]);
});

Deno.test("containerInstances() a per-port label for a port the container lacks is a problem, not unknown", () => {
  const { r } = byPort({ "berth.http.9000.host": "x.test", "berth.http.x.host": "y.test" });
  assert.deepEqual(r.problems.map((p) => [p.label, p.message]), [
    [
      "berth.http.x.host",
      "berth.http.x.host: not a berth label (see the README's label table); ignored",
    ],
    [
      "berth.http.9000.host",
      "berth.http.9000.host: the container has no TCP port 9000 (has 80, 8080); ignored",
    ],
  ]);
});

Deno.test("containerInstances() per-port HTTP labels do not apply to a UDP port", () => {
  const r = containerInstances(
    container({
      labels: { "berth.http.53.host": "dns.test" },
      ports: { "53/udp": [{ HostIp: "0.0.0.0", HostPort: "5353" }] },
    }),
    OPTS,
  );
  assert.deepEqual(r.instances[0]!.httpHosts, []);
  assert.deepEqual(r.problems.map((p) => p.message), [
    "berth.http.53.host: the container has no TCP port 53 (has none); ignored",
  ]);
});

Deno.test("containerInstances() berth.check.* on a container with UDP ports only is reported: nothing to check", () => {
  const udpOnly = containerInstances(
    container({
      labels: { "berth.check.tcp": "true" },
      ports: { "53/udp": [{ HostIp: "0.0.0.0", HostPort: "5353" }] },
    }),
    OPTS,
  );
  assert.equal(udpOnly.instances[0]!.check, null);
  assert.deepEqual(udpOnly.problems.map((p) => [p.label, p.message]), [[
    "berth.check.tcp",
    "berth.check.tcp: the container has no TCP port to check (UDP ports take berth.check.udp); " +
    "ignored",
  ]]);
  // With a TCP port too: its instance is checked, and nothing is reported.
  const both = containerInstances(
    container({
      labels: { "berth.check.tcp": "true" },
      ports: {
        "53/udp": [{ HostIp: "0.0.0.0", HostPort: "5353" }],
        "53/tcp": [{ HostIp: "0.0.0.0", HostPort: "5353" }],
      },
    }),
    OPTS,
  );
  assert.deepEqual(both.problems, []);
  // [is the UDP port's instance, has no check]
  assert.deepEqual(
    both.instances.map((i) => [i.id.endsWith(":udp"), i.check === null]).sort(),
    [[false, false], [true, true]],
  );
});

const DNS_PORTS = {
  "53/udp": [{ HostIp: "0.0.0.0", HostPort: "5353" }],
  "53/tcp": [{ HostIp: "0.0.0.0", HostPort: "5353" }],
};

Deno.test("containerInstances() berth.check.udp checks the UDP ports' instances, berth.check.tcp the TCP ports', with the shared timing", () => {
  const r = containerInstances(
    container({
      labels: {
        "berth.check.tcp": "true",
        "berth.check.udp": "\\x00\\x01PING",
        "berth.check.udp.expect": "PONG",
        "berth.check.interval": "3s",
        "berth.check.timeout": "1s",
      },
      ports: DNS_PORTS,
    }),
    OPTS,
  );
  assert.deepEqual(r.problems, []);
  const udp = r.instances.find((i) => i.id.endsWith(":udp"))!;
  const tcp = r.instances.find((i) => !i.id.endsWith(":udp"))!;
  assert.deepEqual(udp.check, {
    udp: "\\x00\\x01PING",
    udpExpect: "PONG",
    intervalMs: 3000,
    timeoutMs: 1000,
  });
  assert.deepEqual(tcp.check, { tcp: true, intervalMs: 3000, timeoutMs: 1000 });
});

Deno.test("containerInstances() berth.check.udp=true sends an empty datagram (Consul's), =false is no check, any other value is the payload", () => {
  const of = (v: string) =>
    containerInstances(container({ labels: { "berth.check.udp": v }, ports: DNS_PORTS }), OPTS)
      .instances.find((i) => i.id.endsWith(":udp"))!.check;
  assert.deepEqual(of("true"), { udp: "", intervalMs: 10_000, timeoutMs: 2000 });
  assert.equal(of("false"), null);
  // Any other word is the payload as written, those other parsers take for yes or no included.
  for (const v of ["1", "yes", "ON", "0", "no", "off", "True"]) {
    assert.deepEqual(of(v), { udp: v, intervalMs: 10_000, timeoutMs: 2000 }, v);
  }
});

Deno.test("containerInstances() berth.check.udp on a container with TCP ports only, or .expect alone, is reported", () => {
  const tcpOnly = containerInstances(
    container({
      labels: { "berth.check.udp": "true" },
      ports: { "53/tcp": [{ HostIp: "0.0.0.0", HostPort: "5353" }] },
    }),
    OPTS,
  );
  assert.equal(tcpOnly.instances[0]!.check, null);
  assert.deepEqual(tcpOnly.problems.map((p) => p.message), [
    "berth.check.udp: the container has no UDP port to check (TCP ports take berth.check.tcp, " +
    ".http or .grpc); ignored",
  ]);
  const expectOnly = containerInstances(
    container({ labels: { "berth.check.udp.expect": "PONG" }, ports: DNS_PORTS }),
    OPTS,
  );
  assert.ok(expectOnly.instances.every((i) => i.check === null));
  assert.deepEqual(expectOnly.problems.map((p) => p.message), [
    "berth.check.udp.expect: no berth.check.udp to go with (berth.check.udp=PAYLOAD sends the " +
    "datagram); ignored",
  ]);
});

Deno.test("containerInstances() a bad berth.check.udp or .expect is one problem line; the container still registers", () => {
  const r = containerInstances(
    container({
      labels: { "berth.check.udp": "PING\\q", "berth.check.udp.expect": "x".repeat(513) },
      ports: DNS_PORTS,
    }),
    OPTS,
  );
  assert.equal(r.instances.length, 2);
  assert.ok(r.instances.every((i) => i.check === null));
  const lines = r.problems.map((p) => p.message);
  assert.equal(lines.length, 2, JSON.stringify(lines));
  assert.ok(lines.every((l) => !l.includes("\n")));
  assert.match(
    lines[0]!,
    /^berth\.check\.udp="PING\\\\q": expected valid escapes: unknown escape "\\q".*; no UDP check$/,
  );
  assert.match(
    lines[1]!,
    /^berth\.check\.udp\.expect="x{80}…": expected at most 512 bytes; the UDP check fails until it is fixed$/,
  );
});

Deno.test("containerInstances() a bad berth.check.udp.expect fails the UDP check closed (not a check that passes on silence)", () => {
  const cases: [string, RegExp][] = [
    ["PONG\\xZ1", /^berth\.check\.udp\.expect="PONG\\\\xZ1": expected valid escapes: /],
    ["x".repeat(513), /^berth\.check\.udp\.expect="x{80}…": expected at most 512 bytes; /],
    // Longer than a label is read at all: still written, still closed.
    ["x".repeat(5000), /^berth\.check\.udp\.expect: longer than 4096 characters; ignored$/],
  ];
  for (const [expect, problem] of cases) {
    const r = containerInstances(
      container({
        labels: { "berth.check.udp": "PING", "berth.check.udp.expect": expect },
        ports: DNS_PORTS,
      }),
      OPTS,
    );
    const udp = r.instances.find((i) => i.id.endsWith(":udp"))!;
    assert.deepEqual(udp.check, {
      udp: "PING",
      failClosed: UDP_EXPECT_BAD,
      intervalMs: 10_000,
      timeoutMs: 2000,
    });
    assert.deepEqual(r.problems.map((p) => p.label), ["berth.check.udp.expect"]);
    assert.match(r.problems[0]!.message, problem);
  }
  assert.match(UDP_EXPECT_BAD, /^berth\.check\.udp\.expect is not valid/);
  // Blank is not written: no expected text, the check as without the label.
  const blank = containerInstances(
    container({
      labels: { "berth.check.udp": "PING", "berth.check.udp.expect": " " },
      ports: DNS_PORTS,
    }),
    OPTS,
  );
  assert.deepEqual(blank.instances.find((i) => i.id.endsWith(":udp"))!.check, {
    udp: "PING",
    intervalMs: 10_000,
    timeoutMs: 2000,
  });
});

Deno.test("containerInstances() a per-port label with a leading zero is reported, and an unpublished port named as such", () => {
  const r = containerInstances(
    container({
      labels: { "berth.http.080.host": "a.test", "berth.http.81.host": "b.test" },
      exposed: ["80/tcp", "81/tcp"],
      ports: { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "32768" }], "81/tcp": null },
    }),
    OPTS,
  );
  assert.deepEqual(r.problems.map((p) => p.message), [
    "berth.http.080.host: not a berth label (see the README's label table); ignored",
    "berth.http.81.host: port 81/tcp is not published (publish it with -p, or run berth with " +
    "--internal); ignored",
  ]);
});
