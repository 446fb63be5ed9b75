/**
 * HTTP/2 through the proxy with real clients: curl (`--http2`) and h2load (Debian
 * nghttp2-client), over TLS to HTTP/1.1 instances.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { spec, startBackend, TestStore } from "./_testing.ts";
import { testTls, withH2Proxy } from "./_h2_testing.ts";

/** Runs a tool; its stdout (throws with its stderr when it fails). */
async function run(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}\n${text}`);
  }
  return text;
}

/** curl over HTTP/2 to web.test on the proxy's TLS port, trusting the test CA. */
function curl(port: number, caFile: string, args: string[]): Promise<string> {
  return run("curl", [
    "--http2",
    "--silent",
    "--show-error",
    "--cacert",
    caFile,
    "--resolve",
    `web.test:${port}:127.0.0.1`,
    ...args,
  ]);
}

async function withCa<T>(fn: (caFile: string, dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "berth-h2-" });
  try {
    await Deno.writeTextFile(`${dir}/ca.pem`, testTls().caPem);
    return await fn(`${dir}/ca.pem`, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

Deno.test("curl --http2: 100 parallel requests multiplexed on one connection all answer", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withH2Proxy(ts, {}, (port) =>
      withCa(async (ca) => {
        const urls = Array.from({ length: 100 }, (_, i) => `https://web.test:${port}/r${i}`);
        const out = await curl(port, ca, [
          "--parallel",
          "--parallel-max",
          "100",
          "--output",
          "/dev/null",
          "--write-out",
          "%{http_code} %{http_version} %{num_connects}\\n",
          ...urls.flatMap((u) => [u, "--output", "/dev/null"]),
        ]);
        const lines = out.trim().split("\n");
        assert.equal(lines.length, 100);
        for (const line of lines) assert.match(line, /^200 2 [01]$/);
        // One TLS connection carried them all.
        assert.equal(lines.filter((l) => l.endsWith(" 1")).length, 1);
        assert.equal(a.seen.length, 100);
      }));
  } finally {
    await a.close();
  }
});

Deno.test("curl --http2: a 16 MiB upload streams to the instance and back intact", async () => {
  const echo = await startBackend("echo", (req, res) => {
    res.writeHead(200);
    req.pipe(res);
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: echo.port }));
  try {
    await withH2Proxy(ts, {}, (port) =>
      withCa(async (ca, dir) => {
        const data = Buffer.alloc(16 * 1024 * 1024);
        for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i * 2654435761 >>> 0, i);
        await Deno.writeFile(`${dir}/up.bin`, data);
        const out = await curl(port, ca, [
          "--data-binary",
          `@${dir}/up.bin`,
          "--output",
          `${dir}/down.bin`,
          "--write-out",
          "%{http_code} %{http_version}",
          `https://web.test:${port}/upload`,
        ]);
        assert.equal(out, "200 2");
        assert.equal(sha256(await Deno.readFile(`${dir}/down.bin`)), sha256(data));
      }));
  } finally {
    await echo.close();
  }
});

Deno.test("curl --http2: a slow reader (--limit-rate) gets a large response whole", async () => {
  const total = 3 * 1024 * 1024;
  const big = await startBackend("big", (_req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream" });
    res.end(Buffer.alloc(total, 7));
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: big.port }));
  try {
    await withH2Proxy(ts, {}, (port) =>
      withCa(async (ca) => {
        const out = await curl(port, ca, [
          "--limit-rate",
          "3M",
          "--output",
          "/dev/null",
          "--write-out",
          "%{http_code} %{http_version} %{size_download}",
          `https://web.test:${port}/big`,
        ]);
        assert.equal(out, `200 2 ${total}`);
      }));
  } finally {
    await big.close();
  }
});

Deno.test("h2load: a short run through the proxy answers every request 2xx", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withH2Proxy(ts, {}, async (port) => {
      const out = await run("h2load", [
        "-n",
        "2000", // 500 streams per connection, each connection ending with GOAWAY
        "-c",
        "4",
        "-m",
        "10",
        "-H",
        ":authority: web.test",
        `https://127.0.0.1:${port}/`,
      ]);
      assert.match(out, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed/);
      assert.match(out, /status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx/);
      assert.match(out, /Application protocol: h2/);
    });
  } finally {
    await a.close();
  }
});
