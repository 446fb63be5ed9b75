/**
 * Why proxy workers append their own access log batches to the file rather than ship them to
 * the main thread (src/proxy/workers/proxy_worker.ts): two workers each make LINES JSON lines
 * (~300 bytes) in 64 KiB batches and either (direct) append each batch to one O_APPEND file, or
 * (ship) post it to the main thread, which writes it. Prints the wall time, lines/s, the main
 * thread's CPU time (Linux /proc, 10 ms ticks) and how many lines came out whole.
 *
 * Usage: deno run -A scripts/access_log_ship_bench.ts direct|ship [LINES]
 *
 * @module
 */
const WORKER = "access-log-ship-bench";
const inWorker = (self as unknown as { name?: string }).name === WORKER;

/** A worker's part: `lines` lines of worker `id`, batched, to the file or the main thread. */
async function produce(mode: string, lines: number, id: number, path: string): Promise<void> {
  const post = (m: string | null) => (self as unknown as Worker).postMessage(m);
  const file = mode === "direct"
    ? await Deno.open(path, { write: true, append: true, create: true })
    : null;
  const enc = new TextEncoder();
  let batch: string[] = [];
  let bytes = 0;
  for (let i = 0; i < lines; i++) {
    const line = JSON.stringify({
      time: new Date().toISOString(),
      member: "node-1",
      client: "10.0.0.7",
      method: "GET",
      host: "app.test",
      path: `/w${id}/${i}`,
      status: 200,
      bytes_in: 0,
      bytes_out: 512,
      service: "app",
      route: "app.test/",
      instance: "app-1",
      attempts: 1,
      duration_ms: 3,
      request_id: `3f9c0a61d2e4-${i.toString(36)}`,
      proto: "HTTP/1.1",
    }) + "\n";
    batch.push(line);
    bytes += line.length;
    if (bytes < 65536 && i < lines - 1) continue;
    const text = batch.join("");
    batch = [];
    bytes = 0;
    if (file === null) {
      post(text);
      continue;
    }
    const b = enc.encode(text);
    let off = 0;
    while (off < b.length) off += await file.write(b.subarray(off));
  }
  file?.close();
  post(null);
}

/** The main thread's CPU time so far (ms; utime + stime of its task, 10 ms ticks). */
function mainThreadCpuMs(): number {
  const stat = Deno.readTextFileSync(`/proc/self/task/${Deno.pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

async function main(mode: string, lines: number): Promise<void> {
  const path = await Deno.makeTempFile({ prefix: `access-log-${mode}-` });
  const out = await Deno.open(path, { write: true, append: true });
  const enc = new TextEncoder();
  let writes = Promise.resolve();
  const cpu0 = mainThreadCpuMs();
  const t0 = performance.now();
  await Promise.all([0, 1].map((id) =>
    new Promise<void>((resolve) => {
      const w = new Worker(import.meta.url, { type: "module", name: WORKER });
      w.postMessage([mode, lines, id, path]);
      w.onmessage = (e: MessageEvent<string | null>) => {
        if (e.data === null) {
          w.terminate();
          return resolve();
        }
        const b = enc.encode(e.data);
        writes = writes.then(async () => {
          let off = 0;
          while (off < b.length) off += await out.write(b.subarray(off));
        });
      };
    })
  ));
  await writes;
  const ms = performance.now() - t0;
  const cpuMs = mainThreadCpuMs() - cpu0;
  out.close();
  const all = Deno.readTextFileSync(path).split("\n").filter((l) => l !== "");
  await Deno.remove(path);
  let whole = 0;
  for (const l of all) {
    try {
      JSON.parse(l);
      whole++;
    } catch { /* a torn line */ }
  }
  console.log(
    `${mode}: ${all.length} lines (${whole} whole) in ${ms.toFixed(0)} ms, ` +
      `${Math.round(all.length / ms * 1000)} lines/s; main thread CPU ${cpuMs} ms`,
  );
}

if (inWorker) {
  self.onmessage = (e: MessageEvent<[string, number, number, string]>) => {
    void produce(...e.data);
  };
} else {
  const mode = Deno.args[0] ?? "direct";
  if (mode !== "direct" && mode !== "ship") throw new Error("usage: direct|ship [LINES]");
  await main(mode, Number(Deno.args[1] ?? 300_000));
}
