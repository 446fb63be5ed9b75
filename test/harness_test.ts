import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { freePort, portFree, takenReplaced } from "./harness.ts";

Deno.test("takenReplaced() replaces a taken DNS port and keeps the free ones and the cluster port", async () => {
  const host = "127.0.0.1";
  const ports = {
    http: await freePort(host),
    dns: await freePort(host),
    proxy: await freePort(host),
    https: await freePort(host),
    bind: await freePort(host),
  };
  // Another process's DNS took the old DNS port (UDP only), and something holds the cluster port.
  const udp = createSocket("udp4");
  await new Promise<void>((r) => udp.bind(ports.dns, host, () => r()));
  const tcp = Deno.listen({ hostname: host, port: ports.bind });
  try {
    assert.equal(await portFree(host, ports.dns), false);
    const got = await takenReplaced(host, ports);
    assert.notEqual(got.dns, ports.dns);
    assert.equal(await portFree(host, got.dns), true);
    assert.deepEqual({ ...got, dns: ports.dns }, ports);
  } finally {
    tcp.close();
    await new Promise<void>((r) => udp.close(() => r()));
  }
});
