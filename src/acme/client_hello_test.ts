import assert from "node:assert/strict";
import { concatBytes } from "../lib/bytes.ts";
import { CLIENT_HELLO_BYTES_MAX, readClientHello } from "./client_hello.ts";

const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);
const vec8 = (b: Uint8Array) => concatBytes([Uint8Array.of(b.length), b]);
const vec16 = (b: Uint8Array) => concatBytes([u16(b.length), b]);
const ext = (type: number, body: Uint8Array) => concatBytes([u16(type), vec16(body)]);
const ascii = (s: string) => new TextEncoder().encode(s);

/** A ClientHello handshake message built field by field (RFC 8446 §4.1.2). */
function helloMessage(o: { name?: string; alpn?: string[]; extra?: Uint8Array } = {}): Uint8Array {
  const exts = concatBytes([
    ext(0, vec16(concatBytes([Uint8Array.of(0), vec16(ascii(o.name ?? "Web.Example.Test"))]))),
    ext(16, vec16(concatBytes((o.alpn ?? ["acme-tls/1"]).map((p) => vec8(ascii(p)))))),
    ext(43, vec8(concatBytes([u16(0x0304), u16(0x0303)]))),
    ext(10, vec16(concatBytes([u16(0x1d), u16(0x17)]))),
    ext(13, vec16(u16(0x0403))),
    ext(51, vec16(concatBytes([u16(0x1d), vec16(new Uint8Array(32).fill(9))]))),
    o.extra ?? new Uint8Array(0),
  ]);
  const body = concatBytes([
    u16(0x0303),
    new Uint8Array(32).fill(1),
    vec8(new Uint8Array(32).fill(2)),
    vec16(concatBytes([u16(0x1301), u16(0x1302)])),
    vec8(Uint8Array.of(0)),
    vec16(exts),
  ]);
  return concatBytes([Uint8Array.of(1, 0, body.length >> 8, body.length & 0xff), body]);
}

/** 40 body bytes whose session id claims 32 bytes where 5 are left. */
function sessionIdPastEnd(): Uint8Array {
  const b = new Uint8Array(40);
  b[34] = 32;
  return b;
}

function record(fragment: Uint8Array): Uint8Array {
  return concatBytes([Uint8Array.of(0x16, 0x03, 0x01), u16(fragment.length), fragment]);
}

Deno.test("readClientHello() reads name, ALPN, versions, groups, key shares and suites", () => {
  const msg = helloMessage();
  const r = readClientHello(concatBytes([record(msg), Uint8Array.of(0x17)]));
  assert.equal(r.kind, "hello");
  if (r.kind !== "hello") return;
  assert.equal(r.used, msg.length + 5);
  assert.equal(r.hello.servername, "web.example.test");
  assert.deepEqual(r.hello.alpn, ["acme-tls/1"]);
  assert.deepEqual(r.hello.versions, [0x0304, 0x0303]);
  assert.deepEqual(r.hello.groups, [0x1d, 0x17]);
  assert.deepEqual(r.hello.signatureAlgorithms, [0x0403]);
  assert.deepEqual(r.hello.cipherSuites, [0x1301, 0x1302]);
  assert.deepEqual(r.hello.keyShares.get(0x1d), new Uint8Array(32).fill(9));
  assert.deepEqual(r.hello.sessionId, new Uint8Array(32).fill(2));
  assert.deepEqual(r.hello.message, msg);
});

Deno.test("readClientHello() reassembles a hello split over records and waits for more bytes", () => {
  const msg = helloMessage();
  const split = concatBytes([
    record(msg.subarray(0, 3)),
    record(msg.subarray(3, 50)),
    record(msg.subarray(50)),
  ]);
  for (let cut = 0; cut < split.length; cut += 7) {
    assert.deepEqual(readClientHello(split.subarray(0, cut)), { kind: "more" }, `cut at ${cut}`);
  }
  const r = readClientHello(split);
  assert.equal(r.kind === "hello" && r.hello.servername, "web.example.test");
});

Deno.test("readClientHello() says not-tls for other protocols and refuses malformed hellos", () => {
  assert.deepEqual(readClientHello(ascii("GET / HTTP/1.1\r\n")), { kind: "not-tls" });
  const msg = helloMessage();
  const cases: [string, Uint8Array, RegExp][] = [
    ["a record of 0 bytes", Uint8Array.of(0x16, 3, 1, 0, 0), /record of 0 bytes/],
    ["another message type", record(Uint8Array.of(2, 0, 0, 0)), /not a ClientHello/],
    [
      "a session id past the end",
      record(concatBytes([Uint8Array.of(1, 0, 0, 40), sessionIdPastEnd()])),
      /runs past/,
    ],
    [
      "an oversized hello",
      record(Uint8Array.of(1, 0, 0x50, 0)),
      new RegExp(`at most ${CLIENT_HELLO_BYTES_MAX}`),
    ],
    [
      "a non-handshake record inside",
      concatBytes([record(msg.subarray(0, 10)), Uint8Array.of(0x17, 3, 3, 0, 1, 0)]),
      /non-handshake/,
    ],
    ["a bad server name", record(helloMessage({ name: "a b" })), /server_name is not a DNS name/],
    [
      "trailing handshake bytes",
      record(concatBytes([msg, Uint8Array.of(20, 0, 0, 0)])),
      /more handshake data/,
    ],
  ];
  for (const [name, bytes, error] of cases) {
    assert.throws(() => readClientHello(bytes), error, name);
  }
});

Deno.test("readClientHello() survives every truncation and byte flip of a hello without a crash", () => {
  const msg = helloMessage({ alpn: ["h2", "http/1.1"] });
  for (let i = 4; i < msg.length; i++) {
    for (const v of [0x00, 0xff]) {
      const bad = msg.slice();
      bad[i] = v;
      try {
        readClientHello(record(bad));
      } catch (e) {
        assert.match((e as Error).message, /ClientHello|server_name/);
      }
    }
  }
});
