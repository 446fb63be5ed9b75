/**
 * The UDP fast path of a DNS worker: an SO_REUSEPORT socket of its own (src/lib/ffi_udp.ts:
 * libc through FFI), so every worker takes its share of the datagrams sent to the one port.
 * The loop waits in a non-blocking FFI poll (which resolves through the event loop, so zone
 * deltas and relayed answers get their turn between batches), takes every queued datagram up to
 * UDP_BATCH, answers them from memory and sends the answers in one batch; answers that wait on
 * the forwarder go out alone when they come. A datagram longer than the socket's buffer
 * (TCP_QUERY_BYTES_MAX, the largest query TCP takes too) is dropped and counted as dropped.
 *
 * @module
 */
import { errorText } from "../../lib/error_text.ts";
import {
  adoptUdpBatchSocket,
  closeUdpFd,
  type Datagram,
  openUdpBatchSocket,
  type UdpBatchSocket,
} from "../../lib/ffi_udp.ts";
import { type AnswerFn, TCP_QUERY_BYTES_MAX } from "../tcp.ts";

/** Datagrams taken per receive call. */
export const UDP_BATCH = 64;
/**
 * Longest wait in one poll when idle. close() is seen when the wait ends: the socket is the
 * pool's, so close() does not shut it down (which would wake the poll at once).
 */
export const IDLE_POLL_MS = 1000;
/** Pause after a receive that failed (ENOMEM and the like), before trying again. */
export const RECEIVE_RETRY_MS = 100;

/** A running receive-answer-send loop on one socket. */
export interface UdpLoop {
  readonly port: number;
  /** The socket's fd: once reported to the pool it is the pool's (see protocol.ts `udpFd`). */
  readonly fd: number;
  /** Stops the loop; `closeFd`: also closes the socket (only one nobody else was told of). */
  close(closeFd?: boolean): void;
  /** Takes no more queries; answers to the ones taken (relayed) still go out until close(). */
  stopReceiving(): void;
}

/**
 * Opens a socket on `host`:`port` (or serves `fd`, one an earlier worker opened) and starts
 * the loop; `why` when the FFI path is not available here. The socket stays open when the loop
 * is closed: a worker ended by terminate() could not close it, so the pool holds it for the
 * next worker and closes it itself. Throws (one line) when the socket cannot bind.
 */
export function openFfiUdp(
  at: { host: string; port: number; fd?: number },
  answer: AnswerFn,
  /** A datagram longer than the buffer was dropped (counted as dropped in the metrics). */
  truncated: () => void = () => {},
): { loop: UdpLoop } | { why: string } {
  const { host, port, fd } = at;
  const opts = { batch: UDP_BATCH, bufferBytes: TCP_QUERY_BYTES_MAX };
  const opened = fd === undefined
    ? openUdpBatchSocket(host, port, { ...opts, reusePort: true, keepFd: true })
    : adoptUdpBatchSocket(fd, opts);
  if (opened.socket === null) return { why: opened.why };
  return { loop: startLoop(opened.socket, answer, truncated) };
}

function startLoop(socket: UdpBatchSocket, answer: AnswerFn, truncated: () => void): UdpLoop {
  const send = (batch: Datagram[]) => {
    try {
      socket.send(batch);
    } catch {
      // UdpSendError: a client's address the kernel refused; the others went out.
    }
  };
  const sendLater = (out: Uint8Array | null, to: Datagram) => {
    if (out !== null && !socket.closed) send([{ data: out, address: to.address, port: to.port }]);
  };
  let lastError = "";
  let receiving = true;
  const receive = async (): Promise<Datagram[]> => {
    try {
      return socket.receive(UDP_BATCH);
    } catch (e) {
      // The socket stays in the port's group whatever happens: keep serving it.
      const text = errorText(e);
      if (text !== lastError) console.error(`dns: UDP receive failed (retrying): ${text}`);
      lastError = text;
      await new Promise((r) => setTimeout(r, RECEIVE_RETRY_MS));
      return [];
    }
  };
  const run = async () => {
    while (!socket.closed && receiving) {
      if (!await socket.readable(IDLE_POLL_MS) || !receiving) continue;
      const out: Datagram[] = [];
      for (const d of await receive()) {
        if (d.truncated) {
          truncated();
          continue;
        }
        const r = answer(d.data, false);
        if (r === null) continue;
        if (r instanceof Promise) r.then((b) => sendLater(b, d));
        else out.push({ data: r, address: d.address, port: d.port });
      }
      if (out.length > 0) send(out);
    }
  };
  void run();
  return {
    port: socket.address.port,
    fd: socket.fd,
    stopReceiving: () => {
      receiving = false;
    },
    close: (closeFd = false) => {
      socket.close();
      if (closeFd) closeUdpFd(socket.fd);
    },
  };
}
