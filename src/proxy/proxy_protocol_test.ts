import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  buildProxyHeader,
  parseProxyHeader,
  PROXY_V1_BYTES_MAX,
  PROXY_V2_BYTES_MAX,
  PROXY_V2_SIGNATURE,
  ProxyHeaderError,
} from "./proxy_protocol.ts";

const text = (s: string) => Buffer.from(s, "latin1");
const cat = (...parts: Uint8Array[]) => Buffer.concat(parts);

/** A v2 header: `vc` version/command, `ft` family/transport, then `body` (length from it). */
function v2(vc: number, ft: number, body: number[]): Uint8Array {
  return cat(
    PROXY_V2_SIGNATURE,
    Uint8Array.of(vc, ft, body.length >> 8, body.length & 0xff),
    Uint8Array.from(body),
  );
}

Deno.test("parseProxyHeader() reads v1 TCP4, TCP6 and UNKNOWN lines and their length", () => {
  const line = "PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\n";
  assert.deepEqual(parseProxyHeader(cat(text(line), text("GET / HTTP/1.1\r\n"))), {
    header: {
      version: 1,
      source: { address: "203.0.113.7", port: 51234 },
      dest: { address: "10.0.0.1", port: 443 },
    },
    length: line.length,
  });
  const six = "PROXY TCP6 2001:DB8:0:0::1 ::1 0 65535\r\n";
  assert.deepEqual(parseProxyHeader(text(six)), {
    header: {
      version: 1,
      source: { address: "2001:db8::1", port: 0 },
      dest: { address: "::1", port: 65535 },
    },
    length: six.length,
  });
  for (const unknown of ["PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ::1 1 2\r\n"]) {
    assert.deepEqual(parseProxyHeader(text(unknown)), {
      header: { version: 1, source: null, dest: null },
      length: unknown.length,
    });
  }
});

Deno.test("parseProxyHeader() asks for more on every prefix of a valid header", () => {
  const headers = [
    text("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
    v2(0x21, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]),
    v2(0x20, 0x00, []),
  ];
  for (const h of headers) {
    for (let n = 0; n < h.length; n++) assert.equal(parseProxyHeader(h.subarray(0, n)), "more");
    const done = parseProxyHeader(h);
    assert.ok(done !== "more");
    assert.equal(done.length, h.length);
  }
});

Deno.test("parseProxyHeader() refuses bad v1 lines with a reason", () => {
  const bad: [string, RegExp][] = [
    ["GET / HTTP/1.1\r\n", /no PROXY header/],
    ["PROXX TCP4", /no PROXY header/],
    ["proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", /no PROXY header/],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", /without CR/],
    ["PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", /protocol "TCP5" is unknown/],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", /5 fields, not 6/],
    ["PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", /7 fields/],
    ["PROXY TCP4 ::1 5.6.7.8 1 2\r\n", /address "::1" is not TCP4/],
    ["PROXY TCP6 ::1 5.6.7.8 1 2\r\n", /address "5\.6\.7\.8" is not TCP6/],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", /port "65536" is not 0\.\.65535/],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", /port "01"/],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", /port "-1"/],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1 +2\r\n", /port "\+2"/],
  ];
  for (const [line, want] of bad) {
    assert.throws(
      () => parseProxyHeader(text(line)),
      (e) => e instanceof ProxyHeaderError && want.test(e.message),
      line,
    );
  }
});

Deno.test("parseProxyHeader() refuses a v1 line with no CRLF within 107 bytes", () => {
  const long = text("PROXY UNKNOWN " + "x".repeat(PROXY_V1_BYTES_MAX));
  assert.equal(parseProxyHeader(long.subarray(0, PROXY_V1_BYTES_MAX - 1)), "more");
  assert.throws(() => parseProxyHeader(long), /without CRLF in 107 bytes/);
  // 107 bytes with the CRLF last is the longest accepted.
  const max = text("PROXY UNKNOWN " + "x".repeat(PROXY_V1_BYTES_MAX - 16) + "\r\n");
  assert.equal(max.length, PROXY_V1_BYTES_MAX);
  assert.deepEqual(parseProxyHeader(max), {
    header: { version: 1, source: null, dest: null },
    length: 107,
  });
});

Deno.test("parseProxyHeader() reads v2 INET and INET6 PROXY headers, skipping TLVs", () => {
  const tlv = [0x04, 0x00, 0x02, 0xab, 0xcd]; // PP2_TYPE_NOOP-ish, skipped
  const h4 = v2(0x21, 0x11, [203, 0, 113, 7, 10, 0, 0, 1, 0xc8, 0x22, 0x01, 0xbb, ...tlv]);
  assert.deepEqual(parseProxyHeader(cat(h4, text("rest"))), {
    header: {
      version: 2,
      source: { address: "203.0.113.7", port: 51234 },
      dest: { address: "10.0.0.1", port: 443 },
    },
    length: h4.length,
  });
  const src6 = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1];
  const dst6 = [...new Array(15).fill(0), 1];
  const h6 = v2(0x21, 0x21, [...src6, ...dst6, 0, 80, 0, 81]);
  assert.deepEqual(parseProxyHeader(h6), {
    header: {
      version: 2,
      source: { address: "2001:db8::1", port: 80 },
      dest: { address: "::1", port: 81 },
    },
    length: h6.length,
  });
});

Deno.test("parseProxyHeader() gives no address for v2 LOCAL, UNSPEC and UNIX", () => {
  const none = { version: 2, source: null, dest: null };
  // LOCAL with INET addresses present: they are ignored.
  const local = v2(0x20, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]);
  assert.deepEqual(parseProxyHeader(local), { header: none, length: local.length });
  const localEmpty = v2(0x20, 0x00, []);
  assert.deepEqual(parseProxyHeader(localEmpty), { header: none, length: 16 });
  const unspec = v2(0x21, 0x00, [9, 9]);
  assert.deepEqual(parseProxyHeader(unspec), { header: none, length: 18 });
  const unix = v2(0x21, 0x31, new Array(216).fill(0x61));
  assert.deepEqual(parseProxyHeader(unix), { header: none, length: 16 + 216 });
});

Deno.test("parseProxyHeader() refuses bad v2 headers with a reason, as soon as a byte shows it", () => {
  const sig = PROXY_V2_SIGNATURE;
  const bad: [Uint8Array, RegExp][] = [
    [cat(sig.subarray(0, 5), Uint8Array.of(0x0e)), /wrong v2 signature/],
    [cat(sig, Uint8Array.of(0x11)), /version 1 is unknown/],
    [cat(sig, Uint8Array.of(0x31)), /version 3 is unknown/],
    [cat(sig, Uint8Array.of(0x22)), /command 2 is unknown/],
    [cat(sig, Uint8Array.of(0x21, 0x41)), /address family 4 is unknown/],
    [cat(sig, Uint8Array.of(0x21, 0x13)), /transport 3 is unknown/],
    [v2(0x21, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0]), /length 11 is short of the 12/],
    [v2(0x21, 0x21, new Array(35).fill(0)), /length 35 is short of the 36/],
    [v2(0x21, 0x31, new Array(215).fill(0)), /short of the 216/],
    [cat(sig, Uint8Array.of(0x21, 0x11, 0xff, 0xff)), /v2 header of 65551 bytes \(at most 4096\)/],
  ];
  for (const [b, want] of bad) {
    assert.throws(
      () => parseProxyHeader(b),
      (e) => e instanceof ProxyHeaderError && want.test(e.message),
      String(want),
    );
  }
  // The largest accepted, and one byte more.
  const atMax = cat(
    sig,
    Uint8Array.of(0x20, 0x00, (PROXY_V2_BYTES_MAX - 16) >> 8, (PROXY_V2_BYTES_MAX - 16) & 0xff),
  );
  assert.equal(parseProxyHeader(atMax), "more");
  const over = cat(
    sig,
    Uint8Array.of(0x20, 0x00, (PROXY_V2_BYTES_MAX - 15) >> 8, (PROXY_V2_BYTES_MAX - 15) & 0xff),
  );
  assert.throws(() => parseProxyHeader(over), ProxyHeaderError);
});

Deno.test("parseProxyHeader() on random bytes only asks for more or throws ProxyHeaderError", () => {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const starts = [
    text("PROXY "),
    PROXY_V2_SIGNATURE,
    cat(PROXY_V2_SIGNATURE, Uint8Array.of(0x21)),
    new Uint8Array(),
  ];
  for (let i = 0; i < 5000; i++) {
    const tail = Uint8Array.from(
      { length: Math.floor(rand() * 140) },
      () => Math.floor(rand() * 256),
    );
    const b = cat(starts[i % starts.length]!, tail);
    try {
      const r = parseProxyHeader(b);
      if (r !== "more") assert.ok(r.length > 0 && r.length <= b.length);
    } catch (e) {
      assert.ok(e instanceof ProxyHeaderError, `seed ${i}: ${e}`);
    }
  }
});

Deno.test("buildProxyHeader() makes headers parseProxyHeader reads back", () => {
  const cases: [string, string, string, string][] = [
    ["203.0.113.7", "10.0.0.1", "203.0.113.7", "10.0.0.1"],
    ["2001:db8::1", "::1", "2001:db8::1", "::1"],
    // An IPv4-mapped client to an IPv4 listener: IPv4.
    ["::ffff:203.0.113.7", "10.0.0.1", "203.0.113.7", "10.0.0.1"],
    // Mixed families: both as IPv6.
    ["203.0.113.7", "::1", "::ffff:203.0.113.7", "::1"],
  ];
  for (const version of [1, 2] as const) {
    for (const [src, dst, wantSrc, wantDst] of cases) {
      const h = buildProxyHeader(version, { address: src, port: 51234 }, {
        address: dst,
        port: 443,
      });
      assert.deepEqual(parseProxyHeader(h), {
        header: {
          version,
          source: { address: wantSrc, port: 51234 },
          dest: { address: wantDst, port: 443 },
        },
        length: h.length,
      }, `v${version} ${src} ${dst}`);
    }
  }
});

Deno.test("buildProxyHeader() writes the exact v1 line and v2 bytes", () => {
  const src = { address: "192.0.2.1", port: 56324 };
  const dst = { address: "192.0.2.2", port: 443 };
  assert.equal(
    Buffer.from(buildProxyHeader(1, src, dst)).toString("latin1"),
    "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n",
  );
  assert.deepEqual(
    [...buildProxyHeader(2, src, dst)],
    [...PROXY_V2_SIGNATURE, 0x21, 0x11, 0, 12, 192, 0, 2, 1, 192, 0, 2, 2, 0xdc, 0x04, 0x01, 0xbb],
  );
});

Deno.test("buildProxyHeader() sends UNKNOWN (v1) or UNSPEC (v2) for an end that is no IP", () => {
  const unknown = { address: "", port: 0 };
  const dst = { address: "10.0.0.1", port: 80 };
  assert.equal(
    Buffer.from(buildProxyHeader(1, unknown, dst)).toString("latin1"),
    "PROXY UNKNOWN\r\n",
  );
  const h = buildProxyHeader(2, unknown, dst);
  assert.deepEqual([...h], [...PROXY_V2_SIGNATURE, 0x21, 0x00, 0, 0]);
  assert.deepEqual(parseProxyHeader(h), {
    header: { version: 2, source: null, dest: null },
    length: 16,
  });
});
