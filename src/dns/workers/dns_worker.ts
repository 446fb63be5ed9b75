/**
 * The DNS worker thread's entry (started by pool.ts): waits for `init`, then runs a WorkerDns
 * (worker_server.ts) fed by the main thread's messages (protocol.ts). A start error is reported
 * as `failed` with one line; the pool logs it and starts the worker again later.
 *
 * @module
 */
import { errorText } from "../../lib/error_text.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";
import { WorkerDns } from "./worker_server.ts";

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  postMessage(m: FromWorker): void;
  close(): void;
};
const post = (m: FromWorker) => scope.postMessage(m);
let dns: WorkerDns | null = null;
/** Messages that came before init finished starting (zone, deltas), replayed in order. */
const early: ToWorker[] = [];

scope.onmessage = (e) => {
  const m = e.data;
  if (m.type === "init") {
    const w = new WorkerDns(m, post);
    for (const x of early.splice(0)) w.onMessage(x);
    dns = w;
    w.start().catch((err) => {
      post({ type: "failed", error: errorText(err) });
      w.close();
    });
    return;
  }
  if (dns === null) early.push(m);
  else dns.onMessage(m);
};
