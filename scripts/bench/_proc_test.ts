import assert from "node:assert/strict";
import { cpuMs, parseTimes, runClient, startProc, stopEverything } from "./_proc.ts";

Deno.test("parseTimes() answers the children's user + system time of bash's `times`, in ms", () => {
  assert.equal(parseTimes("0m0.002s 0m0.001s\n1m2.500s 0m0.250s\n"), 62_750);
  assert.equal(parseTimes("wrk: warning\n0m0.000s 0m0.000s\n0m1.000s 0m0.500s\n"), 1500);
  assert.throws(() => parseTimes("0m1.000s 0m0.500s\n"), /no CPU times/);
  assert.throws(() => parseTimes("nothing"), /no CPU times/);
});

Deno.test("runClient() answers a client's output and CPU time; a failing client throws with its output", async () => {
  const r = await runClient("sh", ["-c", "echo hello; echo oops >&2"], { limitSeconds: 10 });
  assert.equal(r.stdout, "hello\n");
  assert.match(r.stderr, /^oops\n/);
  assert.ok(r.cpuMs >= 0 && r.wallMs > 0);
  await assert.rejects(
    runClient("sh", ["-c", "echo broken; exit 3"], { limitSeconds: 10 }),
    /sh -c echo broken; exit 3 failed \(exit 3\):\nbroken/,
  );
});

Deno.test("runClient() writes stdout to a file when asked, and kills a client past its limit", async () => {
  const path = Deno.makeTempFileSync();
  try {
    const r = await runClient("echo", ["to the file"], { limitSeconds: 10, stdoutPath: path });
    assert.equal(r.stdout, "");
    assert.equal(Deno.readTextFileSync(path), "to the file\n");
  } finally {
    Deno.removeSync(path);
  }
  await assert.rejects(runClient("sleep", ["30"], { limitSeconds: 1 }), /exit 124: timed out/);
});

Deno.test("startProc() runs a process pinned by taskset; stopEverything() stops it", async () => {
  const p = startProc("sleep", ["60"], { cpus: "0" });
  await new Promise((r) => setTimeout(r, 200));
  const status = Deno.readTextFileSync(`/proc/${p.pid}/status`);
  assert.match(status, /^Cpus_allowed_list:\s+0$/m);
  assert.ok(cpuMs([p.pid]) >= 0);
  await stopEverything();
  assert.equal(p.exited(), true);
  assert.equal(cpuMs([p.pid]), 0); // gone: counts 0
});
