/**
 * Read-path microbenchmark for the proxy's upstream connections: 32 `node:net` client sockets
 * ping-pong small responses (180 bytes, as a proxied instance answer) with an in-process server,
 * reading with 'data' events or with `onread` into one shared buffer and a copy per read
 * (src/proxy/upstream_pool.ts). Prints the process's CPU µs per round trip (both ends).
 *
 * Usage: deno run -A scripts/proxy_read_bench.ts
 *
 * @module
 */
import { Buffer } from "node:buffer";
import net from "node:net";

const reply = Buffer.alloc(180, 97);
const server = net.createServer({ noDelay: true }, (s) => s.on("data", () => s.write(reply)));
await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
const port = (server.address() as net.AddressInfo).port;
const shared = Buffer.allocUnsafe(64 * 1024);

/** CPU time (user + system) of this process so far, in µs (Linux /proc, 10 ms ticks). */
function cpuUs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

async function run(mode: "data" | "onread", ms: number): Promise<number> {
  let trips = 0;
  let stop = false;
  const sockets: net.Socket[] = [];
  await Promise.all(Array.from({ length: 32 }, () =>
    new Promise<void>((ok) => {
      const onData = (_d: Buffer) => {
        trips++;
        if (!stop) s.write("x");
      };
      const s = mode === "data"
        ? net.connect({ host: "127.0.0.1", port, noDelay: true })
        : net.connect({
          host: "127.0.0.1",
          port,
          noDelay: true,
          onread: {
            buffer: shared,
            callback: (n: number, b: Buffer) => {
              const d = Buffer.allocUnsafe(n);
              d.set(b.subarray(0, n));
              onData(d);
              return true;
            },
          },
        });
      if (mode === "data") s.on("data", onData);
      s.on("connect", () => ok());
      sockets.push(s);
    })));
  const cpu0 = cpuUs();
  for (const s of sockets) s.write("x");
  await sleep(ms);
  stop = true;
  const used = cpuUs() - cpu0;
  await sleep(50);
  for (const s of sockets) s.destroy();
  return used / trips;
}

const results: Record<string, number[]> = {};
for (let round = 0; round < 6; round++) {
  for (const mode of ["data", "onread"] as const) {
    const us = await run(mode, 1500);
    if (round > 0) (results[mode] ??= []).push(us); // the first round warms up
  }
}
for (const [mode, xs] of Object.entries(results)) {
  const sorted = [...xs].sort((a, b) => a - b);
  console.log(`${mode}: median ${sorted[sorted.length >> 1]!.toFixed(2)} µs per round trip`);
}
server.close();
