/**
 * Why GoawayGuard exists, shown in a subprocess: Deno 2.9.6's `node:http2` server aborts the
 * whole process (`free(): invalid pointer`) when a client sends GOAWAY on a connection that
 * carried a few hundred streams, as h2load and other nghttp2 clients do when they are done.
 * Measured here (2 cores): the bare server aborts in most first rounds (not all) and within three
 * rounds in every run (also with `h2load -n 300 -c 1 -m 1`, `http2.createSecureServer` too); an
 * outside review could not reproduce it with another server certificate and machine, so the
 * trigger may depend on more than this; a full parallel test run once saw it survive three
 * rounds. So the bare server's fate is printed, and only the guarded server's is asserted.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { FRAME, frame, getFrame, RawH2Client, requestBlock, testTls } from "./_h2_testing.ts";

const SERVER = new URL("./_h2_crash_server.ts", import.meta.url).pathname;

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Runs the server (`guarded` or `bare`) in a subprocess; up to `rounds` times, sends `streams`
 * sequential requests and a GOAWAY on one connection, then checks that a new connection is
 * answered. Resolves with the rounds the server survived and its stderr if it died.
 */
async function goawayAfterStreams(
  mode: "guarded" | "bare",
  streams: number,
  rounds: number,
): Promise<{ survived: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER, mode],
    env: { CERT_PEM: testTls().certPem, KEY_PEM: testTls().keyPem },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderrText = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  try {
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the server did not start: ${await stderrText}`);
      out += value;
    }
    const port = Number(out.trim());
    let survived = 0;
    for (; survived < rounds; survived++) {
      const raw = await RawH2Client.connect(port);
      for (let i = 0, id = 1; i < streams; i++, id += 2) {
        raw.send(getFrame(id, requestBlock("/", "web.test")));
        await until(() => raw.ended(id), `the response to stream ${id}`);
      }
      raw.send(frame(FRAME.GOAWAY, 0, 0, Buffer.alloc(8))); // last-stream-id 0, NO_ERROR
      await new Promise((r) => setTimeout(r, 300));
      raw.close();
      if (exited || !(await answers(port, () => exited))) break;
    }
    return { survived, stderr: exited ? await stderrText : "" };
  } finally {
    if (!exited) child.kill("SIGKILL");
    await status;
    await stderrText.catch(() => "");
  }
}

/** Whether a new connection to `port` gets a response (false once `dead()`). */
async function answers(port: number, dead: () => boolean): Promise<boolean> {
  try {
    const c = await RawH2Client.connect(port);
    c.send(getFrame(1, requestBlock("/", "web.test")));
    await until(() => c.ended(1) || c.closed || dead(), "a new connection's response");
    c.close();
    return c.ended(1) && !dead();
  } catch {
    return false;
  }
}

Deno.test("GoawayGuard: a server behind the guard survives a client's GOAWAY after hundreds of streams, which aborts the bare server here", async () => {
  // The bare server's abort depends on more than this test controls (see the top): it is
  // measured and printed, not asserted, so a loaded machine where it happens to survive does not
  // fail the suite. The guarded server must survive every round.
  const bare = await goawayAfterStreams("bare", 300, 10);
  if (bare.survived < 10) {
    const why = bare.stderr.trim().split("\n").at(-1) ?? "";
    console.log(`bare node:http2 server died after ${bare.survived} survived round(s): ${why}`);
  } else {
    console.log("bare node:http2 server survived 10 rounds this time (the abort did not occur)");
  }
  const { survived, stderr } = await goawayAfterStreams("guarded", 300, 10);
  assert.equal(survived, 10, `the guarded server died: ${stderr}`);
});
