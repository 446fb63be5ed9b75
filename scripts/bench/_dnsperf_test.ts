import assert from "node:assert/strict";
import { DnsperfReader, readDnsperfFile } from "./_dnsperf.ts";

const SUMMARY = `
Statistics:

  Queries sent:         104
  Queries completed:    103 (99.04%)
  Queries lost:         1 (0.96%)

  Response codes:       NOERROR 102 (99.03%), SERVFAIL 1 (0.97%)
  Average packet size:  request 37, reply 53
  Run time (s):         1.000000
  Queries per second:   103.000000
`;

/** 100 answers of 0.000100 s … 0.000199 s, one SERVFAIL of 1.5 s, a timeout, the summary. */
function output(): string {
  const lines = Array.from(
    { length: 100 },
    (_, i) => `> NOERROR web.service.berth A 0.000${100 + i}`,
  );
  lines.push("> SERVFAIL web.service.berth A 1.500000", "> T web.service.berth A");
  return lines.join("\n") + "\n" + SUMMARY;
}

Deno.test("DnsperfReader answers q/s, lost, the nearest-rank p50/p99 and the worst of -v output", () => {
  const r = new DnsperfReader();
  for (const l of output().split("\n")) r.line(l);
  assert.deepEqual(r.result(), {
    qps: 103,
    lost: 1,
    answers: 101,
    failed: 1,
    p50Ms: 0.15, // the 51st of 101
    p99Ms: 0.199, // the 100th; the 101st (1.5 s) is past a 1 s bucket and counts as the worst
    maxMs: 1500,
  });
});

Deno.test("DnsperfReader throws without a summary or without an answered query", () => {
  const r = new DnsperfReader();
  r.line("> NOERROR a A 0.000100");
  assert.throws(() => r.result(), /no summary/);
  const s = new DnsperfReader();
  for (const l of SUMMARY.split("\n")) s.line(l);
  assert.throws(() => s.result(), /no answered query/);
});

Deno.test("readDnsperfFile() reads a file whose lines span chunks", async () => {
  const path = Deno.makeTempFileSync();
  try {
    // Long enough for several reads of the file's stream.
    const many = Array.from({ length: 50_000 }, () => "> NOERROR web.service.berth A 0.000250");
    Deno.writeTextFileSync(path, many.join("\n") + "\n" + SUMMARY.trimEnd());
    const r = await readDnsperfFile(path);
    assert.equal(r.answers, 50_000);
    assert.equal(r.p99Ms, 0.25);
    assert.equal(r.qps, 103);
  } finally {
    Deno.removeSync(path);
  }
});
