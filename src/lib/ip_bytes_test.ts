import assert from "node:assert/strict";
import { ipBytes } from "./ip_bytes.ts";

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
