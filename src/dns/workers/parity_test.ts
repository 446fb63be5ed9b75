/**
 * The DNS fast path (worker threads answering UDP through FFI sockets, udp_ffi.ts) against the
 * portable paths (the single-thread DnsServer on node:dgram, `--dns-workers 1`; and the worker
 * pool's node:dgram fallback when FFI is not permitted): every name form, with and without
 * EDNS0 sizes, must get the same bytes apart from the ID (here the same on both) and the order
 * of the answers (shuffled or rotated per query).
 */
import assert from "node:assert/strict";
import type { HostPort } from "../../lib/host_port.ts";
import { ipToHex } from "../resolve.ts";
import { decode, filledStore, manyInstances, query, testServer, udpExchange } from "../_testing.ts";
import { DnsWorkerPool } from "./pool.ts";

/** Every name form of README's DNS table, and the answers around them. */
const QUESTIONS: [string, string][] = [
  ["web.service.berth", "A"],
  ["web.service.berth", "AAAA"],
  ["web.service.berth", "SRV"],
  ["web.service.berth", "ANY"],
  ["web.service.berth", "TXT"],
  ["web.service.berth", "MX"], // NODATA
  ["WeB.SeRvIcE.BeRtH", "A"], // the client's spelling echoed
  ["v1.web.service.berth", "A"],
  ["v2.v1.web.service.berth", "SRV"],
  ["nope.web.service.berth", "A"],
  ["_web._tcp.service.berth", "SRV"],
  ["_web._v2.service.berth", "SRV"],
  ["web.service.dc1.berth", "A"],
  ["web.service.dc2.berth", "A"], // another datacenter: NXDOMAIN
  ["api.service.berth", "SRV"],
  ["missing.service.berth", "A"],
  ["big.service.berth", "A"], // 100 answers: TC at 512
  ["big.service.berth", "SRV"],
  ["n1.node.berth", "A"],
  ["n1.node.berth", "TXT"],
  ["n1.node.berth", "ANY"],
  ["n3.node.berth", "AAAA"],
  ["n1.node.dc1.berth", "A"],
  ["nobody.node.berth", "A"],
  [`${ipToHex("10.0.0.1")}.addr.dc1.berth`, "A"],
  [`${ipToHex("fd00::10")}.addr.dc1.berth`, "AAAA"],
  ["1.0.0.10.in-addr.arpa", "PTR"],
  ["1.1.168.192.in-addr.arpa", "PTR"],
  [`${[..."fd000000000000000000000000000010"].reverse().join(".")}.ip6.arpa`, "PTR"],
  ["berth", "SOA"],
  ["berth", "NS"],
  ["berth", "ANY"],
  ["nothing.berth", "A"], // NXDOMAIN + SOA
  ["edge.example", "A"],
  ["www.edge.example", "A"],
  ["edge.example", "AAAA"],
  ["api.service.up", "A"], // forwarded to the upstream
  ["big.service.up", "A"], // forwarded, too big for a plain UDP client: TC
  ["missing.service.up", "A"], // forwarded NXDOMAIN
  ["9.9.9.9.in-addr.arpa", "PTR"], // an address berth does not know: forwarded
];
/** No EDNS0 (512 bytes), and EDNS0 sizes. */
const EDNS_SIZES = [undefined, 512, 1232, 4096];

const ZONE = {
  domain: "berth.",
  edgeDomain: "edge.example.",
  ttl: 5,
  serviceTtl: new Map([["web", 30]]),
};

function fixture() {
  return filledStore(
    [
      { name: "n1", address: "192.168.1.1", meta: { proxy: "true", rack: "r1", "rfc1035-x": "y" } },
      { name: "n2", address: "192.168.1.2", meta: { proxy: "true" } },
      { name: "n3", address: "fd00::3" },
    ],
    [
      { id: "web1", service: "web", address: "10.0.0.1", port: 8001, tags: ["v1"], node: "n1" },
      {
        id: "web2",
        service: "web",
        address: "10.0.0.2",
        port: 8002,
        tags: ["v1", "v2"],
        node: "n2",
      },
      { id: "web6", service: "web", address: "fd00::10", port: 8006, node: "n3" },
      { id: "api1", service: "api", address: "10.0.0.20", port: 9000, node: "n1" },
      ...manyInstances(100),
    ],
  );
}

/** A message cut into its parts, records as hex; `answers` sorted (their order is per query). */
function parts(msg: Uint8Array) {
  const hex = (a: number, b: number) =>
    Array.from(msg.subarray(a, b), (x) => x.toString(16).padStart(2, "0")).join("");
  const count = (at: number) => (msg[at]! << 8) | msg[at + 1]!;
  const skipName = (at: number) => {
    while (msg[at] !== 0) {
      if ((msg[at]! & 0xc0) === 0xc0) return at + 2;
      at += msg[at]! + 1;
    }
    return at + 1;
  };
  let at = 12;
  for (let i = 0; i < count(4); i++) at = skipName(at) + 4;
  const question = hex(12, at);
  const heads: string[] = [];
  const section = (n: number) =>
    Array.from({ length: n }, () => {
      const start = at;
      const end = skipName(at) + 10; // name, type, class, TTL, RDLENGTH
      heads.push(hex(start, end));
      at = end + ((msg[end - 2]! << 8) | msg[end - 1]!);
      return hex(start, at);
    });
  const answers = section(count(6)).sort();
  // The answer records with their data left out: which records fit a truncated answer varies.
  const answerShapes = heads.splice(0).sort();
  const authority = section(count(8));
  const additionals = section(count(10));
  assert.equal(at, msg.length, "trailing bytes");
  const flags = hex(2, 12);
  return { id: hex(0, 2), flags, question, answers, answerShapes, authority, additionals };
}

Deno.test("DNS answers over the FFI fast path equal the portable paths' byte for byte, for every name form", async () => {
  const up = filledStore([{ name: "u1", address: "10.9.0.1" }], [
    { id: "api1", service: "api", address: "10.9.0.10", port: 80 },
    ...manyInstances(100),
  ]);
  const upstream = testServer(up.store, { domain: "up.", edgeDomain: null, ttl: 0 });
  await upstream.start();
  const { store } = fixture();
  const common = {
    ...ZONE,
    listen: { host: "127.0.0.1", port: 0 },
    recursors: [upstream.address.udp],
  };
  const single = testServer(store, common);
  const pool = (udp: "ffi" | "dgram") => new DnsWorkerPool({ ...common, store, workers: 2, udp });
  const fast = pool("ffi");
  const dgram = pool("dgram");
  try {
    await single.start();
    await fast.start();
    await dgram.start();
    assert.deepEqual(fast.udpPaths, ["ffi", "ffi"], "the fast path is not in use");
    assert.deepEqual(dgram.udpPaths, ["dgram", "none"]);
    assert.equal(fast.udpWhy, null);
    assert.equal(dgram.udpWhy, null, "node:dgram was asked for, not a fallback");
    const servers: [string, HostPort][] = [
      ["fast", fast.address.udp],
      ["single", single.address.udp],
      ["dgram", dgram.address.udp],
    ];
    // Every worker holds the zone (a query from a new port may reach either).
    for (const [who, to] of servers) {
      let ready = 0;
      for (let i = 0; i < 400 && ready < 16; i++) {
        const r = decode(await udpExchange(to, query("web.service.berth", "A")));
        ready = r.answers.length === 2 ? ready + 1 : 0;
      }
      assert.equal(ready, 16, `${who} never answered from the zone`);
    }
    let id = 1;
    for (const [name, type] of QUESTIONS) {
      for (const udpPayloadSize of EDNS_SIZES) {
        const q = query(name, type, { id: id++, udpPayloadSize });
        const what = `${name} ${type} EDNS ${udpPayloadSize ?? "none"}`;
        const got = await Promise.all(
          servers.map(async ([, to]) => parts(await udpExchange(to, q))),
        );
        const [ref, ...others] = got;
        for (const [i, p] of others.entries()) {
          const who = `${what}: fast vs ${servers[i + 1]![0]}`;
          assert.equal(p.id, ref!.id, who);
          assert.equal(p.flags, ref!.flags, who);
          assert.equal(p.question, ref!.question, who);
          const truncated = (parseInt(ref!.flags.slice(0, 2), 16) & 0x02) !== 0;
          if (truncated) assert.deepEqual(p.answerShapes, ref!.answerShapes, who);
          else assert.deepEqual(p.answers, ref!.answers, who);
          assert.deepEqual(p.authority, ref!.authority, who);
          assert.deepEqual(p.additionals, ref!.additionals, who);
        }
      }
    }
  } finally {
    await fast.close();
    await dgram.close();
    await single.close();
    await upstream.close();
    up.store.close();
    store.close();
  }
});
