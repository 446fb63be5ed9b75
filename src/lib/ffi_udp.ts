/**
 * UDP below the runtime: a non-blocking datagram socket made through libc (`Deno.dlopen`), read
 * and written in batches with `recvmmsg`/`sendmmsg`, waited on with `poll` run as a
 * non-blocking FFI call (on a runtime thread, so the event loop never blocks). With
 * `reusePort` several sockets (one per DNS worker thread) share one port and the kernel spreads
 * datagrams over them by the sender's address and port, which `Deno.listenDatagram` and
 * `node:dgram` cannot do.
 *
 * Where FFI is not permitted (no `--allow-ffi`), libc or one of its symbols is missing, or the
 * platform is not x86_64 Linux (the struct layouts below are that ABI's),
 * `openUdpBatchSocket` returns `{ socket: null, why }` and the caller uses the portable path.
 *
 * A serving loop (an echo server; `answer` must not throw):
 * ```ts
 * const open = openUdpBatchSocket("127.0.0.1", 5353, { reusePort: true });
 * if (open.socket === null) console.log(`portable path: ${open.why}`);
 * else {
 *   const s = open.socket;
 *   while (!s.closed) {
 *     if (!(await s.readable(1000))) continue;
 *     try {
 *       s.send(s.receive().map(answer));
 *     } catch (e) {
 *       log(e); // UdpSendError: some clients' answers did not go out
 *     }
 *   }
 * }
 * ```
 * Wait with readable() between batches even when receive() came back full: the poll resolves
 * through the event loop, so timers and worker messages run in between (a loop that only
 * receives and sends would starve them).
 *
 * @module
 */
import {
  AF_INET,
  AF_INET6,
  bindTo,
  boundName,
  datagramSocket,
  EAGAIN,
  EINTR,
  ErrnoError,
  lastErrno,
  type Libc,
  libc,
  MSG_DONTWAIT,
  MSG_TRUNC,
  MsgVec,
  NAME_SLOT,
  PollFd,
  SHUT_RDWR,
} from "./_ffi_libc.ts";
import { ipBytes } from "./ip_bytes.ts";
import { ByteSlab } from "./slab.ts";

export { ErrnoError } from "./_ffi_libc.ts";

export interface Datagram {
  /** From receive(): a view on a buffer shared with other datagrams; copy it to keep it long. */
  data: Uint8Array;
  address: string;
  port: number;
  /** Set by receive() when the datagram was longer than `bufferBytes` and `data` is cut. */
  truncated?: boolean;
}

export interface UdpBatchSocket {
  readonly address: { host: string; port: number };
  /** Whether close() was called. */
  readonly closed: boolean;
  /** The socket's file descriptor (for adoptUdpBatchSocket; closed by close() unless kept). */
  readonly fd: number;
  /**
   * Up to `max` (default and limit: the batch size) datagrams already queued, without blocking;
   * [] when none or after close(). Senders' IPv4-mapped IPv6 addresses are given as IPv4.
   */
  receive(max?: number): Datagram[];
  /**
   * Sends a batch (one sendmmsg where possible); returns how many went out. A datagram the kernel
   * refuses (bad address, unreachable network, too long) is skipped, the others still go, and
   * then a UdpSendError names the first refusal. A full send buffer (EAGAIN) stops the batch:
   * the rest is not sent and not an error.
   */
  send(batch: readonly Datagram[]): number;
  /**
   * Resolves true when readable, false after timeoutMs or once closed (never blocks the event
   * loop). One wait runs at a time: a call while one is pending shares it.
   */
  readable(timeoutMs: number): Promise<boolean>;
  /** Closes the socket; safe to call again. A pending readable() resolves false. */
  close(): void;
}

export interface UdpBatchOptions {
  /** SO_REUSEPORT: several sockets of this user bind one port. Default false. */
  reusePort?: boolean;
  /** Most datagrams per recvmmsg/sendmmsg, 1..1024. Default 64. */
  batch?: number;
  /** Bytes per datagram buffer, 512..65535; longer datagrams arrive truncated. Default 4096. */
  bufferBytes?: number;
  /** SO_RCVBUF in bytes (the kernel doubles it); absent: the system default. */
  receiveBufferBytes?: number;
  /**
   * close() leaves the socket open, for another thread to adopt (adoptUdpBatchSocket) and the
   * holder of `fd` to close (closeUdpFd). Default false.
   */
  keepFd?: boolean;
  /**
   * How readable() waits: "poll" (default) runs poll(2) with the timeout as a non-blocking FFI
   * call; "timer" polls with timeout 0 every millisecond on the event loop. "poll" wins on both
   * counts (scripts/ffi_udp_bench.ts): it wakes as the datagram lands (one hop from a runtime
   * thread, tens of µs), while the runtime's timers fire a millisecond or more late on a busy
   * host, so "timer" adds that to every idle wake and answers fewer queries flat out. "timer"
   * stays for that comparison.
   */
  wait?: "poll" | "timer";
}

export type OpenResult = { socket: UdpBatchSocket } | { socket: null; why: string };

export const BATCH_DEFAULT = 64;
export const BATCH_MAX = 1024; // UIO_MAXIOV: the kernel's limit on vlen
export const BUFFER_BYTES_DEFAULT = 4096;

/** send() skipped datagrams the kernel refused; `sent` went out, `failed` did not. */
export class UdpSendError extends Error {
  constructor(
    readonly sent: number,
    readonly failed: { address: string; port: number; code: string; message: string }[],
  ) {
    const first = failed[0]!;
    const more = failed.length > 1 ? ` (and ${failed.length - 1} more)` : "";
    super(`sendmmsg to ${hostPort(first.address, first.port)}: ${first.message}${more}`);
    this.name = "UdpSendError";
  }
  get code(): string {
    return this.failed[0]!.code;
  }
}

// ---- addresses ------------------------------------------------------------------------------

/** A parsed destination: 4 or 16 bytes and an IPv6 scope id (numeric `%N` only), or null. */
export function parseIp(text: string): { ip: Uint8Array; scope: number } | null {
  const v4 = parseIpv4(text);
  if (v4) return { ip: v4, scope: 0 };
  const pct = text.indexOf("%");
  const scope = pct < 0 ? 0 : Number(text.slice(pct + 1));
  if (!Number.isInteger(scope) || scope < 0 || scope > 0xffffffff) return null;
  const ip = ipBytes(pct < 0 ? text : text.slice(0, pct));
  return ip && ip.length === 16 ? { ip, scope } : null;
}

/** Dotted-quad IPv4 by hand: send() parses every reply's address, and this is the hot case. */
function parseIpv4(text: string): Uint8Array | null {
  const out = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // a final "."
    if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return null;
    } else if (c === 46 && digits > 0 && part < 4) {
      out[part++] = value;
      value = 0;
      digits = 0;
    } else return null;
  }
  return part === 4 ? out : null;
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

// ---- the socket -----------------------------------------------------------------------------

/** Most ms one poll(2) may wait (its timeout is a C int); longer waits are cut to this. */
const POLL_TIMEOUT_MS_MAX = 2 ** 31 - 1;

/** Closes the fd of a socket dropped without close(). */
const unclosed = new FinalizationRegistry<{ c: Libc; fd: number }>(({ c, fd }) => c.close(fd));

/**
 * Opens a UDP socket on `host` (an IP literal; "::" is dual-stack where the system says so)
 * and `port` (0: one the kernel picks, see `address`). `{ socket: null, why }` when the fast
 * path cannot run here (no FFI permission, no libc or symbol, not x86_64 Linux, a host that is
 * not an IP literal): use the portable path. Throws for a bad argument or a failing
 * socket/bind (an ErrnoError: `code` "EADDRINUSE", …).
 */
export function openUdpBatchSocket(
  host: string,
  port: number,
  opts: UdpBatchOptions = {},
): OpenResult {
  const loaded = libc();
  if ("why" in loaded) return { socket: null, why: loaded.why };
  const c = loaded.libc;
  checkInt("port", port, 0, 65535);
  checkOptions(opts);
  const at = parseIp(host);
  if (!at) {
    return { socket: null, why: `"${host}" is not an IP address (the FFI socket binds IPs)` };
  }
  const family = at.ip.length === 4 ? AF_INET : AF_INET6;
  const fd = datagramSocket(c, family, {
    reusePort: opts.reusePort ?? false,
    receiveBufferBytes: opts.receiveBufferBytes,
  });
  let bound: ReturnType<typeof boundName>;
  try {
    bindTo(c, fd, { ...at, family, port, text: hostPort(host, port) });
    bound = boundName(c, fd);
  } catch (e) {
    c.close(fd);
    throw e;
  }
  return { socket: new FfiUdpSocket(c, fd, bound, { ...opts, ownsFd: !opts.keepFd }) };
}

/**
 * Serves on a socket this process opened before with `keepFd` (`socket.fd`), typically in a
 * thread that has ended: a worker thread killed without closing its socket leaves it open
 * and in its SO_REUSEPORT group, where it would take its share of datagrams and answer none;
 * its replacement adopts it instead (and gets what queued meanwhile). The returned socket never
 * closes `fd` (close() only stops using it: a pending readable() ends at its timeout); the
 * holder closes it with closeUdpFd(). Null with why as openUdpBatchSocket; throws for an fd
 * that is not an IPv4/IPv6 socket.
 */
export function adoptUdpBatchSocket(
  fd: number,
  opts: Omit<UdpBatchOptions, "reusePort" | "receiveBufferBytes" | "keepFd"> = {},
): OpenResult {
  const loaded = libc();
  if ("why" in loaded) return { socket: null, why: loaded.why };
  checkInt("fd", fd, 0, 2 ** 31 - 1);
  checkOptions(opts);
  const bound = boundName(loaded.libc, fd);
  return { socket: new FfiUdpSocket(loaded.libc, fd, bound, { ...opts, ownsFd: false }) };
}

/** Closes a socket's fd kept open by `keepFd` (once: the number may be reused after). */
export function closeUdpFd(fd: number): void {
  const loaded = libc();
  if ("libc" in loaded && Number.isInteger(fd) && fd >= 0) loaded.libc.close(fd);
}

function checkOptions(opts: UdpBatchOptions): void {
  if (opts.batch !== undefined) checkInt("batch", opts.batch, 1, BATCH_MAX);
  if (opts.bufferBytes !== undefined) checkInt("bufferBytes", opts.bufferBytes, 512, 65535);
  if (opts.receiveBufferBytes !== undefined) {
    checkInt("receiveBufferBytes", opts.receiveBufferBytes, 1, 2 ** 30);
  }
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`ffi_udp: ${name} ${value} is not an integer ${min}..${max}`);
  }
}

class FfiUdpSocket implements UdpBatchSocket {
  readonly address: { host: string; port: number };
  readonly #c: Libc;
  readonly #fd: number;
  /** Whether close() closes the fd (else: keepFd, or adopted). */
  readonly #ownsFd: boolean;
  #released = false;
  readonly #family: typeof AF_INET | typeof AF_INET6;
  readonly #batch: number;
  readonly #rx: MsgVec;
  /** Where received datagrams are copied to (they live while they are answered). */
  readonly #slab = new ByteSlab();
  readonly #tx: MsgVec;
  /** Which datagram of send()'s batch each tx entry holds. */
  readonly #txFrom: Int32Array;
  readonly #pollFd: PollFd;
  readonly #wait: "poll" | "timer";
  #closed = false;
  /** The wait readable() callers share, until it settles. */
  #pending: Promise<boolean> | null = null;
  /** Whether a poll(2) runs on a runtime thread now (close() must wake it, not close the fd). */
  #polling = false;
  /** The last destination parsed by send(): replies mostly go to few addresses. */
  #lastText = "";
  #lastIp: { ip: Uint8Array; scope: number } | string = "";

  constructor(
    c: Libc,
    fd: number,
    bound: ReturnType<typeof boundName>,
    o: UdpBatchOptions & { ownsFd: boolean },
  ) {
    const batch = o.batch ?? BATCH_DEFAULT;
    const bufferBytes = o.bufferBytes ?? BUFFER_BYTES_DEFAULT;
    this.#c = c;
    this.#fd = fd;
    this.#ownsFd = o.ownsFd;
    this.#family = bound.family;
    this.address = { host: bound.address, port: bound.port };
    this.#batch = batch;
    this.#rx = new MsgVec(batch, bufferBytes);
    this.#tx = new MsgVec(batch, bufferBytes);
    this.#txFrom = new Int32Array(batch);
    this.#pollFd = new PollFd(fd);
    this.#wait = o.wait ?? "poll";
    if (this.#ownsFd) unclosed.register(this, { c, fd }, this);
  }

  get fd(): number {
    return this.#fd;
  }

  get closed(): boolean {
    return this.#closed;
  }

  receive(max = this.#batch): Datagram[] {
    const n = Math.min(Math.floor(max), this.#batch);
    if (this.#closed || !(n > 0)) return [];
    const rx = this.#rx;
    for (let i = 0; i < n; i++) rx.setNameLen(i, NAME_SLOT);
    const got = this.#c.recvmmsg(this.#fd, rx.bytes, n, MSG_DONTWAIT, null);
    if (got < 0) {
      const errno = lastErrno(this.#c);
      if (errno === EAGAIN || errno === EINTR) return [];
      throw new ErrnoError("recvmmsg", errno, hostPort(this.address.host, this.address.port));
    }
    const out: Datagram[] = new Array(got);
    for (let i = 0; i < got; i++) {
      const start = rx.dataAt(i);
      const { address, port } = rx.readName(i);
      // Copied into a slab: a Uint8Array of its own costs ~1 µs each (src/lib/slab.ts).
      const data = this.#slab.copy(rx.bytes.subarray(start, start + rx.msgLen(i)));
      const d: Datagram = { data, address, port };
      if (rx.flags(i) & MSG_TRUNC) d.truncated = true;
      out[i] = d;
    }
    return out;
  }

  send(batch: readonly Datagram[]): number {
    if (this.#closed) return 0;
    const tx = this.#tx;
    const failed: UdpSendError["failed"] = [];
    let sent = 0;
    let next = 0;
    let full = false;
    while (next < batch.length && !full) {
      let n = 0;
      let outside = false;
      for (; n < this.#batch && next < batch.length; next++) {
        const d = batch[next]!;
        const to = this.#destination(d.address, d.port);
        if (typeof to === "string") {
          failed.push({ address: d.address, port: d.port, code: "EINVAL", message: to });
          continue;
        }
        tx.writeName(n, this.#family, to.ip, d.port, to.scope);
        if (d.data.length <= tx.dataBytes) {
          tx.bytes.set(d.data, tx.dataAt(n));
          tx.setDataLen(n, d.data.length);
        } else {
          tx.pointAt(n, d.data);
          outside = true;
        }
        this.#txFrom[n++] = next;
      }
      for (let k = 0; k < n;) {
        const r = this.#c.sendmmsg(this.#fd, tx.from(k), n - k, 0);
        if (r > 0) {
          sent += r;
          k += r;
          continue;
        }
        const errno = r < 0 ? lastErrno(this.#c) : EAGAIN;
        if (errno === EINTR) continue;
        if (errno === EAGAIN) {
          full = true;
          break;
        }
        const d = batch[this.#txFrom[k]!]!;
        const e = new ErrnoError("sendmmsg", errno);
        failed.push({ address: d.address, port: d.port, code: e.code, message: e.message });
        k++;
      }
      if (outside) { for (let i = 0; i < n; i++) tx.pointHome(i); }
    }
    if (failed.length > 0) throw new UdpSendError(sent, failed);
    return sent;
  }

  /** The bytes to send `address`:`port` to on this socket's family, or why not. */
  #destination(address: string, port: number): { ip: Uint8Array; scope: number } | string {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return `bad port ${port}`;
    if (address !== this.#lastText) {
      const at = parseIp(address);
      this.#lastText = address;
      this.#lastIp = at === null ? `bad address "${address}"` : at;
      if (at && this.#family === AF_INET && at.ip.length === 16) {
        const mapped = at.ip.subarray(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff));
        this.#lastIp = mapped
          ? { ip: at.ip.slice(12), scope: 0 }
          : `IPv6 address "${address}" on an IPv4 socket`;
      }
    }
    return this.#lastIp;
  }

  readable(timeoutMs: number): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.#pending) return this.#pending;
    const ms = timeoutMs === Infinity
      ? -1
      : Math.min(Math.max(0, Math.ceil(timeoutMs) || 0), POLL_TIMEOUT_MS_MAX);
    const p = this.#wait === "poll" ? this.#pollWait(ms) : this.#timerWait(ms);
    this.#pending = p;
    p.then(() => {
      if (this.#pending === p) this.#pending = null;
    });
    return p;
  }

  async #pollWait(ms: number): Promise<boolean> {
    // poll(2) on a runtime thread. close() meanwhile shuts the socket down, which wakes it
    // (POLLHUP); the fd is closed only then, so its number is not reused while poll holds it.
    this.#pollFd.clear();
    this.#polling = true;
    const r = await this.#c.pollWait(this.#pollFd.bytes, 1n, ms);
    this.#polling = false;
    if (this.#closed) this.#release();
    return !this.#closed && r > 0;
  }

  async #timerWait(ms: number): Promise<boolean> {
    const deadline = ms < 0 ? Infinity : performance.now() + ms;
    for (;;) {
      if (this.#closed) return false;
      this.#pollFd.clear();
      if (this.#c.poll(this.#pollFd.bytes, 1n, 0) > 0) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1, left)));
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#ownsFd) return;
    unclosed.unregister(this);
    if (this.#polling) this.#c.shutdown(this.#fd, SHUT_RDWR);
    else this.#release();
  }

  #release(): void {
    if (this.#released || !this.#ownsFd) return;
    this.#released = true;
    this.#c.close(this.#fd);
  }
}
