import assert from "node:assert/strict";
import { CidrList, cidrListOf, cidrText, clientBytes, parseCidr } from "./cidr.ts";

Deno.test("parseCidr() reads IPv4 and IPv6 networks and plain addresses, host bits cleared", () => {
  const text = (s: string) => {
    const c = parseCidr(s);
    return c === null ? null : cidrText(c);
  };
  assert.equal(text("10.0.0.0/8"), "10.0.0.0/8");
  assert.equal(text("10.1.2.3/8"), "10.0.0.0/8");
  assert.equal(text("192.168.1.77/27"), "192.168.1.64/27");
  assert.equal(text(" 127.0.0.1 "), "127.0.0.1/32");
  assert.equal(text("0.0.0.0/0"), "0.0.0.0/0");
  assert.equal(text("2001:DB8::1/32"), "2001:db8::/32");
  assert.equal(text("::1"), "::1/128");
  assert.equal(text("fe80::1:2/65"), "fe80::/65");
  assert.equal(text("::/0"), "::/0");
  assert.equal(text("::ffff:10.9.8.7/104"), "10.0.0.0/8", "IPv4-mapped is IPv4");
  assert.equal(text("::ffff:10.9.8.7"), "10.9.8.7/32");
  assert.equal(text("::ffff:0:0/95"), "::fffe:0:0/95", "below 96 bits it stays IPv6");
});

Deno.test("parseCidr() refuses what is no network", () => {
  for (
    const bad of [
      "",
      "10.0.0.0/33",
      "::/129",
      "10.0.0/8",
      "1.2.3.256",
      "10.0.0.0/",
      "10.0.0.0/08",
      "10.0.0.0/-1",
      "example.com",
      "10.0.0.0/8/8",
      "fe80::1%eth0",
      "1.2.3.4 /8",
      "::ffff:1.2.3.4.5",
    ]
  ) {
    assert.equal(parseCidr(bad), null, bad);
  }
});

Deno.test("CidrList.has() matches IPv4, IPv6 and IPv4-mapped client addresses", () => {
  const list = new CidrList(
    ["10.0.0.0/8", "192.168.1.64/27", "2001:db8::/32", "::1"].map((s) => parseCidr(s)!),
  );
  assert.equal(list.has("10.255.0.1"), true);
  assert.equal(list.has("11.0.0.1"), false);
  assert.equal(list.has("192.168.1.95"), true);
  assert.equal(list.has("192.168.1.96"), false);
  assert.equal(list.has("192.168.1.63"), false);
  assert.equal(list.has("::ffff:10.1.2.3"), true, "a mapped client is IPv4");
  assert.equal(list.has("::ffff:11.1.2.3"), false);
  assert.equal(list.has("2001:db8:ffff::9"), true);
  assert.equal(list.has("2001:db9::"), false);
  assert.equal(list.has("::1"), true);
  assert.equal(list.has("::2"), false);
  assert.equal(list.has("not an ip"), false);
  assert.equal(list.has(""), false);
  assert.equal(new CidrList([parseCidr("0.0.0.0/0")!]).has("::1"), false, "families apart");
  assert.equal(new CidrList([parseCidr("::/0")!]).has("1.2.3.4"), false);
  assert.equal(new CidrList([]).has("1.2.3.4"), false);
});

Deno.test("clientBytes() gives IPv4-mapped addresses as 4 bytes", () => {
  assert.deepEqual([...clientBytes("::ffff:1.2.3.4")!], [1, 2, 3, 4]);
  assert.equal(clientBytes("::1")!.length, 16);
  assert.equal(clientBytes("x"), null);
});

Deno.test("cidrListOf() makes a list of canonical CIDRs, null for none, and throws on a bad one", () => {
  assert.equal(cidrListOf([]), null);
  const l = cidrListOf(["10.0.0.0/8", "::1/128"])!;
  assert.equal(l.has("10.2.3.4"), true);
  assert.equal(l.has("::1"), true);
  assert.equal(l.has("11.0.0.1"), false);
  assert.throws(() => cidrListOf(["lb"]), /^Error: "lb" is not a CIDR$/);
});
