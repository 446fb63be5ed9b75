/**
 * The UDP fast path of a DNS worker: an SO_REUSEPORT socket of its own (src/lib/ffi_udp.ts:
 * libc through FFI), so every worker takes its share of the datagrams sent to the one port.
 * Datagrams are taken in batches, answered from memory and sent back in one batch; answers that
 * wait on the forwarder go out alone when they come. When the socket is idle the loop waits in a
 * non-blocking FFI poll; when busy it still yields to the event loop every YIELD_BATCHES full
 * batches, so zone deltas and relayed answers are not starved.
 *
 * @module
 */
import { errorText } from "../../lib/error_text.ts";
import type { AnswerFn } from "../tcp.ts";

/** Datagrams taken per receive call. */
export const UDP_BATCH = 64;
/** Longest wait in one poll when idle (a close() is seen within it). */
export const IDLE_POLL_MS = 100;
/** Full batches answered back to back before the loop yields to the event loop. */
export const YIELD_BATCHES = 8;

/** The datagram shape of src/lib/ffi_udp.ts. */
interface Datagram {
  data: Uint8Array;
  address: string;
  port: number;
}

/** The socket of src/lib/ffi_udp.ts, as this loop uses it. */
interface UdpBatchSocket {
  readonly address: { host: string; port: number };
  receive(max?: number): Datagram[];
  send(batch: readonly Datagram[]): number;
  readable(timeoutMs: number): Promise<boolean>;
  close(): void;
}

type Open = (
  host: string,
  port: number,
  opts?: { reusePort?: boolean; batch?: number },
) => { socket: UdpBatchSocket } | { socket: null; why: string };

/** A running receive-answer-send loop on one socket. */
export interface UdpLoop {
  readonly port: number;
  close(): void;
}

const FFI_MODULE = new URL("../../lib/ffi_udp.ts", import.meta.url).href;

/** Opens the socket and starts the loop; `why` when the FFI path is not available here. */
export async function openFfiUdp(
  host: string,
  port: number,
  answer: AnswerFn,
): Promise<{ loop: UdpLoop } | { why: string }> {
  let open: Open;
  try {
    ({ openUdpBatchSocket: open } = await import(FFI_MODULE) as { openUdpBatchSocket: Open });
  } catch (e) {
    return { why: `the FFI UDP module did not load: ${errorText(e)}` };
  }
  let opened: ReturnType<Open>;
  try {
    opened = open(host, port, { reusePort: true, batch: UDP_BATCH });
  } catch (e) {
    return { why: errorText(e) };
  }
  if (opened.socket === null) return { why: opened.why };
  return { loop: startLoop(opened.socket, answer) };
}

function startLoop(socket: UdpBatchSocket, answer: AnswerFn): UdpLoop {
  let open = true;
  const sendLater = (out: Uint8Array | null, to: Datagram) => {
    if (out === null || !open) return;
    socket.send([{ data: out, address: to.address, port: to.port }]);
  };
  const run = async () => {
    let full = 0;
    while (open) {
      const batch = socket.receive(UDP_BATCH);
      if (batch.length === 0) {
        full = 0;
        await socket.readable(IDLE_POLL_MS);
        continue;
      }
      const out: Datagram[] = [];
      for (const d of batch) {
        const r = answer(d.data, false);
        if (r === null) continue;
        if (r instanceof Promise) r.then((b) => sendLater(b, d));
        else out.push({ data: r, address: d.address, port: d.port });
      }
      if (out.length > 0) socket.send(out);
      if (batch.length < UDP_BATCH || ++full >= YIELD_BATCHES) {
        full = 0;
        // A non-blocking FFI poll of no wait: one turn of the event loop (messages get in).
        await socket.readable(0);
      }
    }
  };
  run().catch((e) => {
    if (open) console.error(`dns: UDP loop stopped: ${errorText(e)}`);
  }).finally(() => socket.close());
  return {
    port: socket.address.port,
    close: () => {
      open = false;
    },
  };
}
