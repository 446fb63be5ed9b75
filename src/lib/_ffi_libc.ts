/**
 * libc for src/lib/ffi_udp.ts: the symbols it calls through `Deno.dlopen`, Linux x86_64
 * constants, errno, and the memory layout of the structs it hands the kernel. All pointer
 * arithmetic of the FFI UDP socket lives in this file.
 *
 * @module
 */
import { ipText } from "./ip_bytes.ts";

// ---- libc -----------------------------------------------------------------------------------

const LIBC = "libc.so.6";

// Linux x86_64 values from <sys/socket.h>, <netinet/in.h>, <poll.h>, <errno.h>.
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_REUSEPORT = 15;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const POLLIN = 0x1;
export const SHUT_RDWR = 2;
export const EINTR = 4;
export const EAGAIN = 11;
export const ECONNREFUSED = 111;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  // The same poll(2), run on a runtime thread; resolves when it returns.
  pollWait: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let loaded: { libc: Libc } | { why: string } | undefined;

/** libc's symbols, or why they cannot be had; tried once per thread (module instance). */
export function libc(): { libc: Libc } | { why: string } {
  if (loaded) return loaded;
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    return loaded = {
      why: `no FFI UDP on ${Deno.build.os}/${Deno.build.arch} (x86_64 Linux only)`,
    };
  }
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
      return loaded = { why: "FFI is not permitted (run with --allow-ffi)" };
    }
    // The library stays open for the thread's life: pending non-blocking polls use it.
    return loaded = { libc: Deno.dlopen(LIBC, SYMBOLS).symbols };
  } catch (e) {
    return loaded = { why: `cannot load ${LIBC}: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** errno of the last failed call on this thread (valid right after a synchronous call). */
export function lastErrno(c: Libc): number {
  const p = c.__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  4: "EINTR",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  88: "ENOTSOCK",
  90: "EMSGSIZE",
  92: "ENOPROTOOPT",
  93: "EPROTONOSUPPORT",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  100: "ENETDOWN",
  101: "ENETUNREACH",
  105: "ENOBUFS",
  107: "ENOTCONN",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

function errnoText(errno: number): string {
  const c = libc();
  const p = "libc" in c ? c.libc.strerror(errno) : null;
  return p === null ? `errno ${errno}` : Deno.UnsafePointerView.getCString(p);
}

// ---- struct layouts (x86_64 Linux, LP64). All pointer arithmetic of this module is here. ------
//
// struct iovec    { void *iov_base; size_t iov_len; }                                16 bytes
//                   @0 iov_base  @8 iov_len
// struct msghdr   { void *msg_name; socklen_t msg_namelen; /* 4 pad */
//                   struct iovec *msg_iov; size_t msg_iovlen;
//                   void *msg_control; size_t msg_controllen; int msg_flags; /* 4 pad */ } 56
//                   @0 msg_name  @8 msg_namelen  @16 msg_iov  @24 msg_iovlen
//                   @32 msg_control  @40 msg_controllen  @48 msg_flags
// struct mmsghdr  { struct msghdr msg_hdr; unsigned int msg_len; /* 4 pad */ }         64 bytes
//                   @56 msg_len (bytes received or sent)
// sockaddr_in     { u16 family; u16 port (big endian); u8 addr[4]; u8 zero[8]; }       16 bytes
// sockaddr_in6    { u16 family; u16 port (big endian); u32 flowinfo; u8 addr[16];
//                   u32 scope_id; }                                                    28 bytes
// struct pollfd   { int fd; short events; short revents; }                             8 bytes

const IOVEC = 16;
const MMSGHDR = 64;
const SOCKADDR_IN = 16;
const SOCKADDR_IN6 = 28;
export const NAME_SLOT = 32; // room for a sockaddr_in6, 8-aligned
const H_NAME = 0;
const H_NAMELEN = 8;
const H_IOV = 16;
const H_IOVLEN = 24;
const H_FLAGS = 48;
const H_LEN = 56;

/**
 * `count` mmsghdrs, each with one iovec over its own `dataBytes` buffer and its own address
 * slot, in one ArrayBuffer (its memory never moves, so the pointers written into it stay true).
 */
export class MsgVec {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly #base: bigint;
  readonly #iovAt: number;
  readonly #nameAt: number;
  readonly #dataAt: number;

  constructor(readonly count: number, readonly dataBytes: number) {
    this.#iovAt = count * MMSGHDR;
    this.#nameAt = this.#iovAt + count * IOVEC;
    this.#dataAt = this.#nameAt + count * NAME_SLOT;
    const buffer = new ArrayBuffer(this.#dataAt + count * dataBytes);
    this.bytes = new Uint8Array(buffer);
    this.view = new DataView(buffer);
    this.#base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
    for (let i = 0; i < count; i++) {
      const h = i * MMSGHDR;
      this.view.setBigUint64(h + H_NAME, this.#base + BigInt(this.nameAt(i)), true);
      this.view.setUint32(h + H_NAMELEN, NAME_SLOT, true);
      this.view.setBigUint64(h + H_IOV, this.#base + BigInt(this.#iovAt + i * IOVEC), true);
      this.view.setBigUint64(h + H_IOVLEN, 1n, true);
      this.#pointIov(i, this.#base + BigInt(this.dataAt(i)), dataBytes);
    }
  }

  nameAt(i: number): number {
    return this.#nameAt + i * NAME_SLOT;
  }
  dataAt(i: number): number {
    return this.#dataAt + i * this.dataBytes;
  }
  /** The mmsghdrs from entry `i` on, as recvmmsg/sendmmsg take them. */
  from(i: number): Uint8Array {
    return i === 0 ? this.bytes : this.bytes.subarray(i * MMSGHDR);
  }

  setNameLen(i: number, len: number): void {
    this.view.setUint32(i * MMSGHDR + H_NAMELEN, len, true);
  }
  nameLen(i: number): number {
    return this.view.getUint32(i * MMSGHDR + H_NAMELEN, true);
  }
  flags(i: number): number {
    return this.view.getInt32(i * MMSGHDR + H_FLAGS, true);
  }
  msgLen(i: number): number {
    return this.view.getUint32(i * MMSGHDR + H_LEN, true);
  }
  /** Entry i's iovec covers its own buffer's first `len` bytes. */
  setDataLen(i: number, len: number): void {
    this.view.setBigUint64(this.#iovAt + i * IOVEC + 8, BigInt(len), true);
  }
  /** Entry i's iovec covers `data` (memory outside this vector, kept alive by the caller). */
  pointAt(i: number, data: Uint8Array): void {
    const p = Deno.UnsafePointer.value(Deno.UnsafePointer.of(data as Uint8Array<ArrayBuffer>));
    this.#pointIov(i, BigInt(p), data.length);
  }
  /** Entry i's iovec back on its own buffer. */
  pointHome(i: number): void {
    this.#pointIov(i, this.#base + BigInt(this.dataAt(i)), this.dataBytes);
  }
  #pointIov(i: number, at: bigint, len: number): void {
    this.view.setBigUint64(this.#iovAt + i * IOVEC, at, true);
    this.view.setBigUint64(this.#iovAt + i * IOVEC + 8, BigInt(len), true);
  }

  /** The sender address in entry i's slot (after recvmmsg), IPv4-mapped IPv6 as IPv4. */
  readName(i: number): { address: string; port: number } {
    return readSockaddr(this.bytes, this.view, this.nameAt(i), this.nameLen(i));
  }
  /** Writes `ip` (4 or 16 bytes) and `port` as a sockaddr of `family` into entry i's slot. */
  writeName(i: number, family: number, ip: Uint8Array, port: number, scope: number): void {
    const at = this.nameAt(i);
    this.setNameLen(i, writeSockaddr(this.bytes, this.view, at, family, ip, port, scope));
  }
}

/** Reads a sockaddr_in/sockaddr_in6 at `at`; IPv4-mapped IPv6 addresses come out as IPv4. */
function readSockaddr(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  len: number,
): { address: string; port: number } {
  const family = view.getUint16(at, true);
  const port = view.getUint16(at + 2, false);
  if (family === AF_INET && len >= SOCKADDR_IN) return { address: ipText(bytes, 4, at + 4), port };
  if (family === AF_INET6 && len >= SOCKADDR_IN6) {
    const a = at + 8;
    const mapped = view.getBigUint64(a, false) === 0n && view.getUint32(a + 8, false) === 0xffff;
    if (mapped) return { address: ipText(bytes, 4, a + 12), port };
    const scope = view.getUint32(at + 24, true);
    return { address: ipText(bytes, 6, a) + (scope ? `%${scope}` : ""), port };
  }
  return { address: "", port: 0 };
}

/**
 * Writes a sockaddr of `family` for `ip` at `at`, returns its length. An IPv4 `ip` on an
 * AF_INET6 socket is written IPv4-mapped (::ffff:a.b.c.d); the caller never passes IPv6 for AF_INET.
 */
function writeSockaddr(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  family: number,
  ip: Uint8Array,
  port: number,
  scope: number,
): number {
  bytes.fill(0, at, at + NAME_SLOT);
  view.setUint16(at, family, true);
  view.setUint16(at + 2, port, false);
  if (family === AF_INET) {
    bytes.set(ip, at + 4);
    return SOCKADDR_IN;
  }
  if (ip.length === 4) {
    view.setUint16(at + 18, 0xffff, false);
    bytes.set(ip, at + 20);
  } else {
    bytes.set(ip, at + 8);
  }
  view.setUint32(at + 24, scope, true);
  return SOCKADDR_IN6;
}

/** An error libc reported through errno, named as in <errno.h>: `code` is e.g. "EADDRINUSE". */
export class ErrnoError extends Error {
  constructor(readonly call: string, readonly errno: number, context = "") {
    super(`${call}${context ? ` ${context}` : ""}: ${errnoName(errno)} (${errnoText(errno)})`);
    this.name = "ErrnoError";
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

/**
 * A non-blocking, close-on-exec datagram socket of `family` with the options set; closed again
 * when an option fails.
 */
export function datagramSocket(
  c: Libc,
  family: typeof AF_INET | typeof AF_INET6,
  opts: { reusePort: boolean; receiveBufferBytes?: number },
): number {
  const fd = c.socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new ErrnoError("socket", lastErrno(c));
  const set = (name: string, opt: number, value: number) => {
    const v = new Uint8Array(4);
    new DataView(v.buffer).setInt32(0, value, true);
    if (c.setsockopt(fd, SOL_SOCKET, opt, v, 4) < 0) {
      const e = new ErrnoError("setsockopt", lastErrno(c), name);
      c.close(fd);
      throw e;
    }
  };
  // SO_REUSEPORT only: on UDP, SO_REUSEADDR would let a socket of any user that sets it too
  // bind the port and take its datagrams; SO_REUSEPORT admits only this user's sockets.
  if (opts.reusePort) set("SO_REUSEPORT", SO_REUSEPORT, 1);
  if (opts.receiveBufferBytes !== undefined) set("SO_RCVBUF", SO_RCVBUF, opts.receiveBufferBytes);
  return fd;
}

/** A socket address for bind(2) and connect(2); `text` names it in errors. */
export interface SockTarget {
  family: number;
  /** 4 bytes for AF_INET, 4 or 16 for AF_INET6. */
  ip: Uint8Array;
  port: number;
  scope: number;
  text: string;
}

/** `to` as a struct sockaddr and its length. */
function sockaddrOf(to: SockTarget): { bytes: Uint8Array; len: number } {
  const bytes = new Uint8Array(NAME_SLOT);
  const view = new DataView(bytes.buffer);
  return { bytes, len: writeSockaddr(bytes, view, 0, to.family, to.ip, to.port, to.scope) };
}

/** bind(2) to `to`. */
export function bindTo(c: Libc, fd: number, to: SockTarget): void {
  const { bytes, len } = sockaddrOf(to);
  if (c.bind(fd, bytes, len) < 0) throw new ErrnoError("bind", lastErrno(c), to.text);
}

/**
 * connect(2) a datagram socket to `to` (as bindTo): the kernel then takes datagrams from that
 * peer only and reports its ICMP errors (port unreachable: ECONNREFUSED) on the next call.
 */
export function connectTo(c: Libc, fd: number, to: SockTarget): void {
  const { bytes, len } = sockaddrOf(to);
  if (c.connect(fd, bytes, len) < 0) throw new ErrnoError("connect", lastErrno(c), to.text);
}

/** getsockname(2): the family, address and port the socket is bound to (port 0 resolved). */
export function boundName(
  c: Libc,
  fd: number,
): { family: typeof AF_INET | typeof AF_INET6; address: string; port: number } {
  const bytes = new Uint8Array(NAME_SLOT);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, NAME_SLOT, true);
  if (c.getsockname(fd, bytes, len) < 0) throw new ErrnoError("getsockname", lastErrno(c));
  const view = new DataView(bytes.buffer);
  const family = view.getUint16(0, true);
  const port = view.getUint16(2, false);
  // The bound address as bound: "::ffff:…" stays IPv6 here, unlike a sender's.
  if (family === AF_INET6) return { family, address: ipText(bytes, 6, 8), port };
  if (family === AF_INET) return { family, address: ipText(bytes, 4, 4), port };
  throw new Error(`getsockname: fd ${fd} is not an IPv4 or IPv6 socket (family ${family})`);
}

/** One struct pollfd waiting for POLLIN on `fd` (its own ArrayBuffer: a pending poll reads it). */
export class PollFd {
  readonly bytes = new Uint8Array(new ArrayBuffer(8));
  readonly #view = new DataView(this.bytes.buffer);
  constructor(fd: number) {
    this.#view.setInt32(0, fd, true);
    this.#view.setInt16(4, POLLIN, true);
  }
  /** revents of the last poll; cleared before each. */
  get revents(): number {
    return this.#view.getInt16(6, true);
  }
  clear(): void {
    this.#view.setInt16(6, 0, true);
  }
}
