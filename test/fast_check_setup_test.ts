import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;
const FIXTURE = "test/fast_check_replay_fixture.ts";

/** `deno test` of the failing fixture with the suite's preload, as `deno task test` runs it. */
async function runFixture(
  env: Record<string, string> = {},
): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--preload", "test/fast_check_setup.ts", FIXTURE],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: r.code, out: text.decode(r.stdout) + text.decode(r.stderr) };
}

/** Each failed property's seed, path and replay command, in the order the run printed them. */
function failures(out: string): { seed: string; path: string; replay: string }[] {
  return [...out.matchAll(/\{ seed: (-?\d+), path: "([\d:]+)".*\n(?:.*\n)*?Replay: (.*)/g)].map(
    (m) => ({ seed: m[1]!, path: m[2]!, replay: m[3]! }),
  );
}

Deno.test("fast_check_setup: a failing property prints the command that replays it, and BERTH_FC_SEED replays it", async () => {
  const first = await runFixture();
  assert.notEqual(first.code, 0);
  const seen = failures(first.out);
  assert.equal(seen.length, 2, first.out);
  for (const f of seen) {
    assert.equal(f.replay, `BERTH_FC_SEED=${f.seed} deno task test ${FIXTURE}`);
  }
  // The sync property's seed replays the sync property; both use it, so compare that one.
  const again = await runFixture({ BERTH_FC_SEED: seen[0]!.seed });
  const replayed = failures(again.out);
  assert.equal(replayed.length, 2, again.out);
  assert.deepEqual(replayed[0], seen[0], "same seed, same shrunk path");
  assert.equal(replayed[1]!.seed, seen[0]!.seed);
});

Deno.test("fast_check_setup: a BERTH_FC_SEED that is not an integer fails the run, naming it", async () => {
  const r = await runFixture({ BERTH_FC_SEED: "12ab" });
  assert.notEqual(r.code, 0);
  assert.match(
    r.out,
    /BERTH_FC_SEED: expected the integer seed a failing property printed, got "12ab"/,
  );
});
