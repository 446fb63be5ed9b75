/**
 * The UDP fast path of a DNS worker: an SO_REUSEPORT socket of its own (src/lib/ffi_udp.ts:
 * libc through FFI), so every worker takes its share of the datagrams sent to the one port.
 * The loop waits in a non-blocking FFI poll (which resolves through the event loop, so zone
 * deltas and relayed answers get their turn between batches), takes every queued datagram up to
 * UDP_BATCH, answers them from memory and sends the answers in one batch; answers that wait on
 * the forwarder go out alone when they come. A datagram longer than the socket's buffer
 * (TCP_QUERY_BYTES_MAX, the largest query TCP takes too) is dropped.
 *
 * @module
 */
import { errorText } from "../../lib/error_text.ts";
import { type Datagram, openUdpBatchSocket, type UdpBatchSocket } from "../../lib/ffi_udp.ts";
import { type AnswerFn, TCP_QUERY_BYTES_MAX } from "../tcp.ts";

/** Datagrams taken per receive call. */
export const UDP_BATCH = 64;
/** Longest wait in one poll when idle (a close() is seen at once: it ends the wait). */
export const IDLE_POLL_MS = 1000;

/** A running receive-answer-send loop on one socket. */
export interface UdpLoop {
  readonly port: number;
  close(): void;
}

/**
 * Opens the socket and starts the loop; `why` when the FFI path is not available here. Throws
 * (one line) when the socket cannot bind.
 */
export function openFfiUdp(
  host: string,
  port: number,
  answer: AnswerFn,
): { loop: UdpLoop } | { why: string } {
  const opened = openUdpBatchSocket(host, port, {
    reusePort: true,
    batch: UDP_BATCH,
    bufferBytes: TCP_QUERY_BYTES_MAX,
  });
  if (opened.socket === null) return { why: opened.why };
  return { loop: startLoop(opened.socket, answer) };
}

function startLoop(socket: UdpBatchSocket, answer: AnswerFn): UdpLoop {
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
  const run = async () => {
    while (!socket.closed) {
      if (!await socket.readable(IDLE_POLL_MS)) continue;
      const out: Datagram[] = [];
      for (const d of socket.receive(UDP_BATCH)) {
        if (d.truncated) continue;
        const r = answer(d.data, false);
        if (r === null) continue;
        if (r instanceof Promise) r.then((b) => sendLater(b, d));
        else out.push({ data: r, address: d.address, port: d.port });
      }
      if (out.length > 0) send(out);
    }
  };
  run().catch((e) => {
    if (!socket.closed) console.error(`dns: UDP loop stopped: ${errorText(e)}`);
    socket.close();
  });
  return { port: socket.address.port, close: () => socket.close() };
}
