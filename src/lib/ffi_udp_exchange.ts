/**
 * One datagram out, the first answer back, through a UDP socket made and `connect()`ed in the
 * kernel with libc (`Deno.dlopen`, as src/lib/ffi_udp.ts). A kernel-connected socket is told of
 * the peer's ICMP errors: a port nobody listens on answers "port unreachable", and the next
 * `recv` fails with ECONNREFUSED, so a closed port is known at once instead of after a timeout.
 * Deno 2.9.6's `node:dgram` `connect()` does not connect the kernel socket, and
 * `Deno.listenDatagram` has no connect, so neither sees that error.
 *
 * Waiting is poll(2) run as a non-blocking FFI call (on a runtime thread: the event loop never
 * blocks), at most POLL_SLICE_MS at a time; an abort shuts the socket down, which wakes the
 * poll, and the fd is closed only after the poll returned (its number is never reused under it).
 *
 * ```ts
 * const ex = udpExchangeOf();
 * if ("why" in ex) console.log(`no FFI: ${ex.why}`);
 * else {
 *   const answer = await ex.exchange({ address: "127.0.0.1", port: 53 }, query, signal);
 *   // { kind: "reply", data } | { kind: "error", code: "ECONNREFUSED", message }
 * }
 * ```
 *
 * @module
 */
import {
  AF_INET,
  AF_INET6,
  connectTo,
  datagramSocket,
  EAGAIN,
  EINTR,
  ErrnoError,
  errnoName,
  lastErrno,
  type Libc,
  libc,
  MSG_DONTWAIT,
  PollFd,
  SHUT_RDWR,
} from "./_ffi_libc.ts";
import { parseIp } from "./ffi_udp.ts";

/** Longest single poll(2); an abort also wakes it at once (shutdown). */
export const POLL_SLICE_MS = 1000;
/** Bytes of an answer kept; a longer datagram is cut to this. */
export const ANSWER_BYTES_MAX = 65_535;

/** What came back: a datagram from the peer, or an error the kernel reported for it. */
export type UdpAnswer =
  | { kind: "reply"; data: Uint8Array }
  | { kind: "error"; code: string; message: string };

/**
 * Sends `payload` to `address:port` and resolves with the first answer; rejects when the
 * socket cannot be made or `signal` aborts (nothing came back in time).
 */
export type UdpExchange = (
  target: { address: string; port: number },
  payload: Uint8Array,
  signal: AbortSignal,
) => Promise<UdpAnswer>;

/** The FFI exchange, or why it cannot run here (no --allow-ffi, not x86_64 Linux, no libc). */
export function udpExchangeOf(): { exchange: UdpExchange } | { why: string } {
  const loaded = libc();
  if ("why" in loaded) return { why: loaded.why };
  const c = loaded.libc;
  return { exchange: (target, payload, signal) => exchange(c, target, payload, signal) };
}

async function exchange(
  c: Libc,
  target: { address: string; port: number },
  payload: Uint8Array,
  signal: AbortSignal,
): Promise<UdpAnswer> {
  const at = parseIp(target.address);
  if (at === null) throw new Error(`"${target.address}" is not an IP address`);
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    throw new RangeError(`bad port ${target.port}`);
  }
  signal.throwIfAborted();
  const family = at.ip.length === 4 ? AF_INET : AF_INET6;
  const fd = datagramSocket(c, family, { reusePort: false });
  const text = target.address.includes(":")
    ? `[${target.address}]:${target.port}`
    : `${target.address}:${target.port}`;
  let polling = false;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    c.close(fd);
  };
  // An abort while poll(2) holds the fd wakes it; the fd is closed once the poll returned.
  const onAbort = () => {
    if (polling) c.shutdown(fd, SHUT_RDWR);
  };
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    connectTo(c, fd, { ...at, family, port: target.port, text });
    const out = payload.length === 0 ? new Uint8Array(1) : payload; // a valid pointer
    for (;;) {
      const n = Number(c.send(fd, out, BigInt(payload.length), MSG_DONTWAIT));
      if (n >= 0) break;
      const errno = lastErrno(c);
      if (errno === EINTR) continue;
      if (errno === EAGAIN) throw new ErrnoError("send", errno, text);
      return {
        kind: "error",
        code: errnoName(errno),
        message: new ErrnoError("send", errno).message,
      };
    }
    const buffer = new Uint8Array(ANSWER_BYTES_MAX);
    const pollFd = new PollFd(fd);
    for (;;) {
      signal.throwIfAborted();
      pollFd.clear();
      polling = true;
      await c.pollWait(pollFd.bytes, 1n, POLL_SLICE_MS);
      polling = false;
      signal.throwIfAborted();
      const n = Number(c.recv(fd, buffer, BigInt(buffer.length), MSG_DONTWAIT));
      if (n >= 0) return { kind: "reply", data: buffer.slice(0, n) };
      const errno = lastErrno(c);
      if (errno === EAGAIN || errno === EINTR) continue;
      return {
        kind: "error",
        code: errnoName(errno),
        message: new ErrnoError("recv", errno).message,
      };
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    close();
  }
}
