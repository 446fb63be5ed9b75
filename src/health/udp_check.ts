/**
 * The UDP check (`berth.check.udp`, a registered check's `UDP`), as Consul runs it: one datagram
 * to the instance from a socket connected to it, then
 * - an ICMP error back (port unreachable: nobody listens there) fails at once:
 *   `UDP 10.0.0.5:53: port unreachable (ICMP)`;
 * - any reply passes (`…: reply`); silence until the timeout passes too
 *   (`…: no reply within 2000ms, no refusal`): many UDP services answer nothing;
 * - with an expected text (`berth.check.udp.expect`), a reply containing it must come: another
 *   reply (`…: reply without the expected text`) or silence (`…: no reply within 2000ms`) fails;
 * - a host name (a registered check's) whose lookup outlasts the timeout fails: nothing was sent
 *   (`…: host lookup timed out after 2000ms, nothing sent`);
 * - a bad `berth.check.udp.expect` fails closed: nothing is sent, every run fails with the
 *   definition's `failClosed` text (probe.ts).
 *
 * Refusals are seen through a kernel-connected socket made with libc (src/lib/ffi_udp_exchange.ts).
 * Without FFI (no `--allow-ffi`, not x86_64 Linux) the datagram goes through `node:dgram`, which
 * reports no ICMP error in Deno 2.9.6: a closed port is then silence, and the output says so (the
 * checker logs FFI's reason once).
 *
 * @module
 */
import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { bytesContain, unescapeBytes } from "../lib/escaped_bytes.ts";
import { type UdpAnswer, type UdpExchange, udpExchangeOf } from "../lib/ffi_udp_exchange.ts";

export type { UdpAnswer, UdpExchange };

/** How UDP checks send: the exchange, and whether it reports ICMP refusals. */
export interface UdpProber {
  exchange: UdpExchange;
  seesRefusals: boolean;
  /** Why refusals are not seen (FFI's reason: no --allow-ffi, another platform, no libc). */
  why?: string;
}

/** A UDP check's target (probe.ts's ProbeTarget of kind `udp`). */
export interface UdpTarget {
  address: string;
  port: number;
  /** The datagram, as written (escapes); "" an empty one. */
  payload: string;
  /** Text the reply must contain (escapes); absent: any reply or silence passes. */
  expect?: string;
}

let chosen: UdpProber | undefined;

/** The FFI prober where FFI runs, else `node:dgram` (refusals unseen); chosen once per thread. */
export function defaultUdpProber(): UdpProber {
  if (chosen) return chosen;
  const ffi = udpExchangeOf();
  return chosen = "exchange" in ffi
    ? { exchange: ffi.exchange, seesRefusals: true }
    : { exchange: nodeUdpExchange, seesRefusals: false, why: ffi.why };
}

/**
 * The address to send to: an IP literal as it is, a host name (a registered check's
 * `host:port`) resolved as TCP checks resolve theirs (the system resolver, first address).
 */
export async function udpAddressOf(address: string): Promise<string> {
  if (isIP(address) !== 0) return address;
  return (await lookup(address)).address;
}

/** The datagram of a target, as bytes (its text was checked by the store's rules). */
export function payloadOf(t: UdpTarget): Uint8Array {
  return unescapeBytes(t.payload);
}

/** The status and output for what came back. */
export function udpAnswerResult(
  t: UdpTarget,
  what: string,
  a: UdpAnswer,
): { status: "passing" | "critical"; output: string } {
  if (a.kind === "error") {
    const why = a.code === "ECONNREFUSED" ? "port unreachable (ICMP)" : errorWords(a);
    return { status: "critical", output: `${what}: ${why}` };
  }
  if (t.expect === undefined || bytesContain(a.data, unescapeBytes(t.expect))) {
    return { status: "passing", output: `${what}: reply` };
  }
  return { status: "critical", output: `${what}: reply without the expected text` };
}

/** The status and output when nothing came back within `timeoutMs`. */
export function udpSilenceResult(
  t: UdpTarget,
  what: string,
  timeoutMs: number,
  seesRefusals: boolean,
): { status: "passing" | "critical"; output: string } {
  if (t.expect !== undefined) {
    return { status: "critical", output: `${what}: no reply within ${timeoutMs}ms` };
  }
  return {
    status: "passing",
    output: seesRefusals
      ? `${what}: no reply within ${timeoutMs}ms, no refusal`
      : `${what}: no reply within ${timeoutMs}ms (ICMP refusals not seen: FFI unavailable)`,
  };
}

const ERRNO_WORDS: Record<string, string> = {
  EHOSTUNREACH: "host unreachable (ICMP)",
  ENETUNREACH: "network unreachable (ICMP)",
  EMSGSIZE: "datagram too long",
};

function errorWords(a: { code: string; message: string }): string {
  return ERRNO_WORDS[a.code] ?? a.message.split("\n")[0]!.toLowerCase();
}

/**
 * The portable exchange: a `node:dgram` socket that sends the datagram and takes the first one
 * back from the instance's address and port. Deno 2.9.6 reports no ICMP error on it.
 */
export const nodeUdpExchange: UdpExchange = (target, payload, signal) =>
  new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const v6 = target.address.includes(":");
    const sock = dgram.createSocket(v6 ? "udp6" : "udp4");
    let done = false;
    const finish = (f: () => void) => {
      if (done) return;
      done = true;
      signal.removeEventListener("abort", onAbort);
      try {
        sock.close();
      } catch {
        // already closed
      }
      f();
    };
    const onAbort = () => finish(() => reject(signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    sock.on("message", (m, r) => {
      if (r.port !== target.port || r.address !== target.address) return;
      finish(() => resolve({ kind: "reply", data: new Uint8Array(m) }));
    });
    sock.on("error", (e) => {
      const code = String((e as { code?: unknown }).code ?? "EIO");
      finish(() => resolve({ kind: "error", code, message: e.message }));
    });
    sock.send(payload, target.port, target.address, (e) => {
      if (e) {
        const code = String((e as { code?: unknown }).code ?? "EIO");
        finish(() => resolve({ kind: "error", code, message: e.message }));
      }
    });
  });
