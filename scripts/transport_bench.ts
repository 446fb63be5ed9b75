/**
 * Throughput of the cluster transport in one process, plain TCP against mutual TLS: two
 * Transports on 127.0.0.1/127.0.0.2, 256-byte bodies. Requests keep 1 or 64 in flight (a
 * request counts once its response arrived); one-way messages keep up to 1024 sent and not yet
 * delivered (how raft streams appends). Three rounds alternate plain and TLS; the best figure of
 * each is printed. Certificates are issued with src/pki (src/cluster/_tls_testing.ts).
 *
 *     deno run -A scripts/transport_bench.ts [--seconds 2]
 *
 * @module
 */
import process from "node:process";
import { testCa } from "../src/cluster/_tls_testing.ts";
import { type Hello, Transport, type TransportTls } from "../src/cluster/transport.ts";
import { errorText } from "../src/lib/error_text.ts";
import { parseFlags, parseIntIn } from "../src/lib/flags.ts";

const BODY_BYTES = 256;
const MESSAGES_IN_FLIGHT = 1024;
const ROUNDS = 3;

interface Pair {
  a: Transport;
  b: Transport;
  bAddr: string;
  delivered: () => number;
  close: () => Promise<void>;
}

async function pair(tls: boolean): Promise<Pair> {
  const ca = testCa();
  let delivered = 0;
  const make = async (host: string, name: string, nodeId: number) => {
    const id: Hello = { clusterId: "c1", nodeId, address: "" };
    const creds = ca.issue(name);
    const t = new Transport({
      listen: { host, port: 0 },
      self: () => id,
      onMessage: () => delivered++,
      onRequest: (_from, body) => Promise.resolve(body),
      ...(tls
        ? {
          tls: {
            credentials: () => creds,
            verifyPeer: () => null,
          } satisfies TransportTls,
        }
        : {}),
    });
    await t.start();
    id.address = `${t.address.host}:${t.address.port}`;
    return { t, addr: id.address };
  };
  const a = await make("127.0.0.1", "alpha", 1);
  const b = await make("127.0.0.2", "beta", 2);
  return {
    a: a.t,
    b: b.t,
    bAddr: b.addr,
    delivered: () => delivered,
    close: async () => {
      await a.t.close();
      await b.t.close();
    },
  };
}

/** Ops per second of wall time, and CPU time (user + system, both transports) per op in µs. */
interface Figure {
  rate: number;
  cpuUs: number;
}

async function measure(run: () => Promise<number>): Promise<Figure> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const ops = await run();
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { rate: ops / secs, cpuUs: (cpu.user + cpu.system) / Math.max(ops, 1) };
}

/** Completed requests with `inflight` kept in flight for `seconds`. */
async function requests(p: Pair, inflight: number, seconds: number): Promise<number> {
  const body = { t: "bench", data: new Uint8Array(BODY_BYTES) };
  const deadline = performance.now() + seconds * 1000;
  let done = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      await p.a.request(p.bAddr, body);
      done++;
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
  return done;
}

/** Delivered one-way messages, at most MESSAGES_IN_FLIGHT undelivered, for `seconds`. */
async function messages(p: Pair, seconds: number): Promise<number> {
  const body = { t: "bench", data: new Uint8Array(BODY_BYTES) };
  const start = p.delivered();
  let sent = 0;
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline) {
    while (sent - (p.delivered() - start) < MESSAGES_IN_FLIGHT) {
      if (!p.a.send(p.bAddr, body)) throw new Error("bench: a message was dropped");
      sent++;
    }
    await new Promise((r) => setTimeout(r, 0));
  }
  return p.delivered() - start;
}

async function main(args: string[]): Promise<number> {
  let seconds: number;
  try {
    const raw = parseFlags(args, [{ name: "seconds", kind: "string" }], { positionals: false })
      .values.get("seconds");
    try {
      seconds = raw === undefined ? 2 : parseIntIn(raw, [1, 3600]);
    } catch (e) {
      throw new Error(`--seconds ${raw}: ${errorText(e)}; expected an integer in 1..3600`);
    }
  } catch (e) {
    console.error(`transport bench: ${errorText(e)}`);
    return 2;
  }
  console.log(`transport bench: 2 transports in one process, ${BODY_BYTES}-byte bodies`);
  console.log("ops/s of wall time, and CPU µs per op (both ends, user + system): best of 3 rounds");
  console.log("transport | requests, 1 in flight | requests, 64 in flight | messages");
  console.log("--------- | --------------------- | ---------------------- | --------");
  // Rounds alternate plain and TLS; the best of each column is kept (the machine is shared).
  const best = new Map<boolean, Figure[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const tls of [false, true]) {
      const p = await pair(tls);
      await requests(p, 16, 0.3); // Warm up the JIT and the connection.
      const got = [
        await measure(() => requests(p, 1, seconds)),
        await measure(() => requests(p, 64, seconds)),
        await measure(() => messages(p, seconds)),
      ];
      await p.close();
      const was = best.get(tls);
      best.set(
        tls,
        was === undefined ? got : was.map((f, i) => ({
          rate: Math.max(f.rate, got[i]!.rate),
          cpuUs: Math.min(f.cpuUs, got[i]!.cpuUs),
        })),
      );
    }
  }
  const cell = (f: Figure, width: number) =>
    `${Math.round(f.rate)}/s, ${f.cpuUs.toFixed(1)} µs`.padStart(width);
  for (const tls of [false, true]) {
    const [r1, r64, m] = best.get(tls)!;
    console.log(
      `${(tls ? "mTLS" : "plain").padEnd(9)} | ${cell(r1!, 21)} | ${cell(r64!, 22)} | ` +
        `${cell(m!, 8)}`,
    );
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
