import assert from "node:assert/strict";
import { AccessLog, FileSink, type LogSink, PartialWriteError, writeAll } from "./access_log.ts";
import { record } from "./_record_testing.ts";

/** A sink keeping each write; `gate` (when set) holds writes until it resolves. */
function memorySink(batchBytesMax = 1024) {
  const writes: string[] = [];
  const decoder = new TextDecoder();
  const s = {
    name: "memory",
    batchBytesMax,
    gate: null as Promise<void> | null,
    fail: null as Error | null,
    reopened: 0,
    closed: false,
    writes,
    async write(bytes: Uint8Array) {
      if (s.gate !== null) await s.gate;
      if (s.fail !== null) throw s.fail;
      writes.push(decoder.decode(bytes));
    },
    reopen() {
      s.reopened++;
      return Promise.resolve();
    },
    close() {
      s.closed = true;
    },
  };
  return s satisfies LogSink;
}

Deno.test("AccessLog writes one line per record, whole lines per batch, off the request path", async () => {
  const sink = memorySink(300);
  const log = new AccessLog(sink, { format: "json" });
  for (let i = 0; i < 10; i++) log.end(record({ path: `/${i}` }));
  assert.equal(sink.writes.length, 0); // nothing written within end()
  await log.flushed();
  const lines = sink.writes.join("").split("\n");
  assert.equal(lines.pop(), "");
  assert.deepEqual(lines.map((l) => JSON.parse(l).path), [...Array(10).keys()].map((i) => `/${i}`));
  assert.ok(sink.writes.length > 1, "several batches");
  for (const w of sink.writes) {
    assert.ok(w.endsWith("\n"));
    assert.ok(w.length <= 300 || w.split("\n").length === 2, "a batch over the max is one line");
  }
  assert.equal(log.dropped, 0);
});

Deno.test("AccessLog writes the lines of one flush delay together, a whole batch at once", async () => {
  const sink = memorySink(100_000);
  const log = new AccessLog(sink, { format: "json", flushDelayMs: 30 });
  log.end(record());
  await new Promise((r) => setTimeout(r, 10));
  log.end(record());
  log.end(record());
  await log.flushed();
  assert.equal(sink.writes.length, 1, "three lines, one write");
  assert.equal(sink.writes[0]!.split("\n").length, 4);
  const small = memorySink(1);
  const soon = new AccessLog(small, { format: "json", flushDelayMs: 60_000 });
  soon.end(record()); // a whole batch: written without waiting for the delay
  await soon.flushed();
  assert.equal(small.writes.length, 1);
});

Deno.test("AccessLog drops and counts lines past its buffer while the writer is stuck, never blocking", async () => {
  const sink = memorySink();
  const stuck = Promise.withResolvers<void>();
  sink.gate = stuck.promise;
  const line = (await (async () => {
    const probe = memorySink();
    const l = new AccessLog(probe, { format: "common" });
    l.end(record());
    await l.flushed();
    return probe.writes[0]!;
  })()).length;
  const log = new AccessLog(sink, { format: "common", bufferBytesMax: line * 5, flushDelayMs: 0 });
  log.end(record());
  await new Promise((r) => setTimeout(r, 5)); // the writer took that line and is stuck on it
  for (let i = 0; i < 20; i++) log.end(record());
  assert.equal(log.pending, 5);
  assert.equal(log.dropped, 15);
  stuck.resolve();
  await log.flushed();
  assert.equal(sink.writes.join("").split("\n").length - 1, 6);
  log.end(record());
  await log.flushed();
  assert.equal(log.dropped, 15, "room again once written");
});

Deno.test("AccessLog counts lines of a failed write as dropped and logs once a minute", async () => {
  const sink = memorySink();
  sink.fail = new Error("ENOSPC");
  const lines: string[] = [];
  let now = 0;
  const log = new AccessLog(sink, { format: "json", log: (l) => lines.push(l), now: () => now });
  log.end(record());
  log.end(record());
  await log.flushed();
  log.end(record());
  await log.flushed();
  assert.equal(log.dropped, 3);
  assert.deepEqual(lines, ["proxy: access log memory: write failed (ENOSPC); 2 line(s) lost"]);
  now = 61_000;
  log.end(record());
  await log.flushed();
  assert.equal(lines.length, 2);
  assert.match(lines[1]!, /2 line\(s\) lost$/);
});

Deno.test("AccessLog.reopen() after the file was moved: later lines go to a new file at the path", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/access.log`;
  const log = new AccessLog(await FileSink.open(path), { format: "json" });
  try {
    log.end(record({ path: "/before" }));
    await log.flushed();
    await Deno.rename(path, `${path}.1`);
    log.end(record({ path: "/buffered" })); // buffered when asked to reopen: either file
    await log.reopen();
    log.end(record({ path: "/after" }));
    await log.flushed();
    const paths = async (p: string) =>
      (await Deno.readTextFile(p)).trim().split("\n").map((l) => JSON.parse(l).path);
    const old = await paths(`${path}.1`);
    const fresh = await paths(path);
    assert.deepEqual(old.filter((p) => p !== "/buffered"), ["/before"]);
    assert.deepEqual(fresh.filter((p) => p !== "/buffered"), ["/after"]);
    assert.equal([...old, ...fresh].filter((p) => p === "/buffered").length, 1);
  } finally {
    await log.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AccessLog.reopen() that cannot open the path keeps writing to the old file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/sub/access.log`;
  await Deno.mkdir(`${dir}/sub`);
  const log = new AccessLog(await FileSink.open(path), { format: "json" });
  try {
    await Deno.rename(`${dir}/sub`, `${dir}/gone`);
    await assert.rejects(log.reopen(), /access log .*sub\/access\.log: /);
    log.end(record({ path: "/still" }));
    await log.flushed();
    assert.match(await Deno.readTextFile(`${dir}/gone/access.log`), /"\/still"/);
  } finally {
    await log.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AccessLog.close() writes what is buffered, then closes the sink", async () => {
  const sink = memorySink();
  const log = new AccessLog(sink, { format: "json" });
  log.end(record());
  await log.close();
  assert.equal(sink.writes.length, 1);
  assert.equal(sink.closed, true);
  log.end(record()); // after close: ignored
  await log.flushed();
  assert.equal(sink.writes.length, 1);
});

Deno.test("AccessLog.close() ends within its timeout on a sink that never writes, counting the lines lost", async () => {
  const sink = memorySink(1);
  sink.gate = new Promise<void>(() => {}); // a pipe nobody reads
  const lines: string[] = [];
  const log = new AccessLog(sink, {
    format: "json",
    closeTimeoutMs: 50,
    log: (l) => lines.push(l),
  });
  for (let i = 0; i < 5; i++) log.end(record());
  await log.close(); // the test hangs here without the timeout
  assert.equal(log.dropped, 5, "the write under way and the 4 buffered");
  assert.equal(log.pending, 0);
  assert.equal(sink.closed, true);
  assert.deepEqual(lines, [
    "proxy: access log memory: not written within 50 ms at close; 5 line(s) lost",
  ]);
});

Deno.test("AccessLog batches are measured in UTF-8 bytes, not UTF-16 units", async () => {
  const probe = memorySink(100_000);
  const one = new AccessLog(probe, { format: "json" });
  const rec = record({ path: "/" + "\u00e9".repeat(1000) }); // 2 bytes each in UTF-8
  one.end(rec);
  await one.flushed();
  const bytes = new TextEncoder().encode(probe.writes[0]!).length;
  const sink = memorySink(bytes * 2);
  const log = new AccessLog(sink, { format: "json" });
  for (let i = 0; i < 6; i++) log.end(rec);
  await log.flushed();
  for (const w of sink.writes) assert.ok(new TextEncoder().encode(w).length <= bytes * 2);
  assert.equal(sink.writes.length, 3);
});

Deno.test("AccessLog starts the batch after a cut write with a newline, so that its lines stay whole", async () => {
  const sink = memorySink();
  let cut = true;
  const write = sink.write;
  sink.write = async (b: Uint8Array) => {
    if (cut) {
      cut = false;
      sink.writes.push(new TextDecoder().decode(b.subarray(0, 10)));
      throw new PartialWriteError(10, new Error("ENOSPC"));
    }
    await write(b);
  };
  const log = new AccessLog(sink, { format: "json", log: () => {} });
  log.end(record({ path: "/lost" }));
  await log.flushed();
  log.end(record({ path: "/next" }));
  await log.flushed();
  const lines = sink.writes.join("").split("\n");
  assert.equal(lines.length, 3);
  assert.equal(JSON.parse(lines[1]!).path, "/next");
  assert.equal(log.dropped, 1);
});

Deno.test("writeAll throws PartialWriteError when a write fails after a short one", async () => {
  let calls = 0;
  const w = {
    write(p: Uint8Array) {
      if (calls++ === 0) return Promise.resolve(Math.floor(p.length / 2));
      return Promise.reject(new Error("ENOSPC"));
    },
  };
  const e = await writeAll(w, new Uint8Array(10)).catch((e) => e);
  assert.ok(e instanceof PartialWriteError);
  assert.equal(e.written, 5);
  calls = 1;
  const first = await writeAll(w, new Uint8Array(10)).catch((e) => e);
  assert.ok(!(first instanceof PartialWriteError), "nothing written: a plain failure");
});

Deno.test("AccessLog drops a line on a full buffer before formatting it", async () => {
  const sink = memorySink();
  sink.gate = new Promise<void>(() => {});
  const log = new AccessLog(sink, { format: "json", bufferBytesMax: 1, flushDelayMs: 60_000 });
  log.end(record()); // a line over the max when empty: dropped after formatting
  let read = 0;
  const rec = record();
  Object.defineProperty(rec, "path", { get: () => (read++, "/") });
  (log as unknown as { end(r: unknown): void }).end(rec);
  assert.equal(log.dropped, 2);
  assert.equal(read, 1, "formatted once");
  const full = new AccessLog(memorySink(), { format: "json", bufferBytesMax: 300 });
  full.end(record());
  read = 0;
  full.end(rec);
  assert.equal(read, 0, "the buffer was full: not formatted");
  assert.equal(full.dropped, 1);
  await full.close();
});

Deno.test("FileSink.openLazy on a path it cannot open: lines dropped and counted, reopen() opens it later", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/sub/access.log`;
  const { sink, error } = await FileSink.openLazy(path);
  assert.match(error!, /access log .*sub\/access\.log: /);
  assert.equal(sink.isOpen, false);
  const log = new AccessLog(sink, { format: "json", log: () => {} });
  try {
    log.end(record({ path: "/lost" }));
    await log.flushed();
    assert.equal(log.dropped, 1);
    await Deno.mkdir(`${dir}/sub`);
    await log.reopen();
    log.end(record({ path: "/kept" }));
    await log.flushed();
    assert.match(await Deno.readTextFile(path), /"\/kept"/);
  } finally {
    await log.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("FileSink.openLazy tries the open again on a write a minute after the last try", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/sub/access.log`;
  let now = 0;
  const { sink } = await FileSink.openLazy(path, () => now);
  try {
    await Deno.mkdir(`${dir}/sub`);
    await assert.rejects(sink.write(new Uint8Array([0x61])), /not open/);
    now = 60_000;
    await sink.write(new Uint8Array([0x61]));
    assert.equal(await Deno.readTextFile(path), "a");
  } finally {
    sink.close();
    await Deno.remove(dir, { recursive: true });
  }
});
