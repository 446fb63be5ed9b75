import assert from "node:assert/strict";

const SCRIPT = new URL("./_h2c_goaway_load.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

Deno.test("h2c route: the proxy's h2c client sessions survive an instance's graceful GOAWAYs under load (own process)", async () => {
  // Deno's node:http2 has aborted on a GOAWAY received by a client session (deno#36788-like
  // reports); a run in a subprocess shows an abort as an exit status instead of killing the tests.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, SCRIPT, "2000", "20", "100"],
    // Also measured by hand: 5000 requests, 50 at a time, GOAWAY after 100, 400 or 1000
    // streams per session: all 200, exit 0.
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `the proxy process ended with ${out.code}: ${stderr.slice(-500)}`);
  const { statuses, goaways } = JSON.parse(new TextDecoder().decode(out.stdout).trim());
  assert.ok(goaways >= 10, `only ${goaways} sessions ended with GOAWAY`);
  assert.deepEqual(statuses, { 200: 2000 });
});
