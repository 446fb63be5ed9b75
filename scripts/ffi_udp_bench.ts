/**
 * How much headroom the FFI UDP socket (src/lib/ffi_udp.ts) gives over the runtime's own UDP: a
 * trivial DNS "echo" server (answers each query with its own bytes, QR set) on
 *   - ffi          the FFI socket, readable() waiting with poll(2) as a non-blocking FFI call,
 *   - ffi-timer    the FFI socket, readable() polling with timeout 0 every millisecond,
 *   - ffi-x2       two processes with FFI sockets sharing the port by SO_REUSEPORT,
 *   - dgram        node:dgram (what src/dns/server.ts uses),
 *   - deno         Deno.listenDatagram,
 * each driven by dnsperf: flat out (`-c 4 -Q 1000000`: q/s, average latency, and the server's
 * CPU time per query from /proc, which a busy machine disturbs less than q/s) and paced at
 * 2,000 q/s (average latency at light load, where the way of waiting shows).
 *
 *   deno run -A scripts/ffi_udp_bench.ts [SECONDS=5] [KIND…]
 *
 * @module
 */
import { createSocket } from "node:dgram";
import { openUdpBatchSocket } from "../src/lib/ffi_udp.ts";

const KINDS = ["ffi", "ffi-timer", "ffi-x2", "dgram", "deno"] as const;
type Kind = typeof KINDS[number];
const HOST = "127.0.0.1";
const PACED_QPS = 2000;

/** The answer to a query: its own bytes with QR (byte 2, top bit) set. */
function answer(data: Uint8Array): Uint8Array {
  if (data.length > 2) data[2]! |= 0x80;
  return data;
}

async function serve(kind: Kind, port: number): Promise<void> {
  if (kind === "ffi" || kind === "ffi-timer" || kind === "ffi-x2") {
    const open = openUdpBatchSocket(HOST, port, {
      reusePort: kind === "ffi-x2",
      wait: kind === "ffi-timer" ? "timer" : "poll",
    });
    if (!open.socket) throw new Error(open.why);
    const s = open.socket;
    console.log(`ready ${s.address.port}`);
    for (;;) {
      if (!(await s.readable(1000))) continue;
      const got = s.receive();
      for (const d of got) answer(d.data);
      s.send(got);
    }
  } else if (kind === "dgram") {
    const s = createSocket("udp4");
    s.on("message", (m, r) => s.send(answer(m), r.port, r.address));
    await new Promise<void>((ok) => s.bind(port, HOST, ok));
    console.log(`ready ${s.address().port}`);
    await new Promise(() => {});
  } else {
    const l = Deno.listenDatagram({ hostname: HOST, port, transport: "udp" });
    console.log(`ready ${(l.addr as Deno.NetAddr).port}`);
    for await (const [data, addr] of l) l.send(answer(data), addr).catch(() => {});
  }
}

function startServer(
  kind: Kind,
  port: number,
): { child: Deno.ChildProcess; ready: Promise<number> } {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-net", import.meta.filename!, "serve", kind, String(port)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const ready = (async () => {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!/ready \d+\n/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${kind} server exited: ${text}`);
      text += value;
    }
    reader.releaseLock();
    return Number(/ready (\d+)/.exec(text)![1]);
  })();
  return { child, ready };
}

/** CPU time (user + system, all threads) of process `pid` so far, ms (10 ms resolution). */
function processCpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10; // utime, stime in 1/100 s
}

async function dnsperf(port: number, seconds: number, queries: string, qps: number) {
  const out = await new Deno.Command("dnsperf", {
    args: ["-s", HOST, "-p", String(port), "-d", queries, "-l", String(seconds), "-c", "4"]
      .concat(["-Q", String(qps)]),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const q = /Queries per second:\s+([\d.]+)/.exec(text);
  const lat = /Average Latency \(s\):\s+([\d.]+)/.exec(text);
  const lost = /Queries lost:\s+(\d+)/.exec(text);
  if (!q || !lat) throw new Error(`dnsperf output not understood:\n${text}`);
  return { qps: Number(q[1]), avgMs: Number(lat[1]) * 1000, lost: Number(lost?.[1] ?? 0) };
}

async function main(args: string[]): Promise<void> {
  if (args[0] === "serve") return await serve(args[1] as Kind, Number(args[2]));
  const seconds = Number(args[0] ?? 5);
  const kinds = args.length > 1 ? args.slice(1) as Kind[] : [...KINDS];
  const dir = await Deno.makeTempDir({ prefix: "ffi-udp-bench-" });
  const queries = `${dir}/queries`;
  await Deno.writeTextFile(queries, "bench.service.berth A\n");
  try {
    for (const kind of kinds) {
      const first = startServer(kind, 0);
      const port = await first.ready;
      const servers = [first];
      if (kind === "ffi-x2") {
        const second = startServer(kind, port);
        await second.ready;
        servers.push(second);
      }
      const cpuMs = () => servers.reduce((sum, s) => sum + processCpuMs(s.child.pid), 0);
      try {
        const cpu0 = cpuMs();
        const full = await dnsperf(port, seconds, queries, 1_000_000);
        const cpuUs = (cpuMs() - cpu0) * 1000 / (full.qps * seconds);
        const paced = await dnsperf(port, seconds, queries, PACED_QPS);
        console.log(
          `${kind.padEnd(10)} ${full.qps.toFixed(0).padStart(7)} q/s ` +
            `avg ${full.avgMs.toFixed(3)} ms lost ${full.lost}, server CPU ${
              cpuUs.toFixed(1)
            } µs/q; ` +
            `at ${PACED_QPS} q/s avg ${paced.avgMs.toFixed(3)} ms lost ${paced.lost}`,
        );
      } finally {
        for (const s of servers) {
          s.child.kill("SIGKILL");
          await s.child.status;
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main(Deno.args);
