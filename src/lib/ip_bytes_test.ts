import assert from "node:assert/strict";
import { ipBytes, ipText } from "./ip_bytes.ts";

Deno.test("ipBytes() parses IPv4, IPv6 with ::, and IPv4-mapped IPv6", () => {
  assert.deepEqual([...ipBytes("10.1.2.3")!], [10, 1, 2, 3]);
  assert.deepEqual([...ipBytes("::1")!], [...new Array(15).fill(0), 1]);
  assert.deepEqual(
    [...ipBytes("2001:db8::8:1")!],
    [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 1],
  );
  assert.deepEqual([...ipBytes("::ffff:1.2.3.4")!].slice(10), [0xff, 0xff, 1, 2, 3, 4]);
  assert.equal(ipBytes("web.internal"), null);
  assert.equal(ipBytes("1.2.3.256"), null);
});

Deno.test("ipText() writes IPv4, RFC 5952 IPv6 and IPv4-mapped IPv6, and round-trips ipBytes()", () => {
  assert.equal(ipText(Uint8Array.from([10, 1, 2, 3]), 4), "10.1.2.3");
  assert.equal(ipText(Uint8Array.from([9, 9, 127, 0, 0, 1]), 4, 2), "127.0.0.1");
  assert.equal(ipText(ipBytes("::1")!, 6), "::1");
  assert.equal(ipText(ipBytes("::")!, 6), "::");
  assert.equal(ipText(ipBytes("2001:db8:0:0:1:0:0:1")!, 6), "2001:db8::1:0:0:1");
  assert.equal(ipText(ipBytes("2001:db8:0:1:1:1:1:1")!, 6), "2001:db8:0:1:1:1:1:1");
  assert.equal(ipText(ipBytes("FE80:0:0:0:0:0:0:AB")!, 6), "fe80::ab");
  assert.equal(ipText(ipBytes("1:0:0:2:0:0:0:3")!, 6), "1:0:0:2::3");
  assert.equal(ipText(ipBytes("::ffff:1.2.3.4")!, 6), "::ffff:1.2.3.4");
  for (const ip of ["2001:db8::8:1", "fd00:1:2:3::", "::3:4:5:6:7:8"]) {
    assert.equal(ipText(ipBytes(ip)!, 6), ip);
  }
  assert.equal(ipText(ipBytes("0:2:3:4:5:6:7:8")!, 6), "0:2:3:4:5:6:7:8", "one zero group stays");
});
