/**
 * A stand-in DNS worker for pool_test.ts: reports listening, then throws (an uncaught error:
 * the pool sees the worker's error event, as for a crash of the real one).
 *
 * @module
 */
import type { FromWorker, ToWorker } from "./protocol.ts";

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  postMessage(m: FromWorker): void;
};
scope.onmessage = (e) => {
  const m = e.data;
  if (m.type !== "init") return;
  scope.postMessage({ type: "listening", port: m.port === 0 ? 1 : m.port, udp: "none" });
  setTimeout(() => {
    throw new Error(`worker ${m.index} fails on purpose`);
  }, 10);
};
