import assert from "node:assert/strict";
import { ApiClient, ApiHttpError } from "./client.ts";
import { putFile } from "./put_file.ts";

/** Serves one handler on a free port, runs `fn` with its base URL, then stops it. */
async function withServer(
  handler: (req: Request) => Promise<Response>,
  fn: (base: string) => Promise<void>,
): Promise<void> {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    handler,
  );
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    ac.abort();
    await server.finished;
  }
}

interface Seen {
  length: string | null;
  chunked: boolean;
  body: Uint8Array;
  token: string | null;
}

/** A handler that records what a PUT brought, then answers `status` with `text`. */
function recorder(seen: Seen[], status: number, text: string, headers: HeadersInit = {}) {
  return async (req: Request) => {
    seen.push({
      length: req.headers.get("content-length"),
      chunked: /chunked/i.test(req.headers.get("transfer-encoding") ?? ""),
      body: new Uint8Array(await req.arrayBuffer()),
      token: req.headers.get("x-consul-token"),
    });
    return new Response(text, { status, headers });
  };
}

async function tempFile(bytes: Uint8Array): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "berth-put-file-" });
  await Deno.writeFile(path, bytes);
  return path;
}

Deno.test("putFile() sends the file with its Content-Length, not chunked, and returns the answer", async () => {
  const bytes = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 31) & 255);
  const path = await tempFile(bytes);
  const seen: Seen[] = [];
  try {
    await withServer(recorder(seen, 400, "bad snapshot\n", { "X-A": "b" }), async (base) => {
      const r = await putFile(new URL(`${base}/v1/snapshot`), path, { headers: { "X-C": "d" } });
      assert.equal(r.status, 400);
      assert.equal(r.text, "bad snapshot\n");
      assert.equal(r.headers["x-a"], "b");
    });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.length, String(bytes.byteLength));
    assert.equal(seen[0]!.chunked, false);
    assert.deepEqual(seen[0]!.body, bytes);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("ApiClient.snapshotRestore() sends the file with its length and token; an error answer is an ApiHttpError", async () => {
  const bytes = new Uint8Array(200_000).fill(7);
  const path = await tempFile(bytes);
  const seen: Seen[] = [];
  try {
    await withServer(
      recorder(seen, 200, "true", { "X-Berth-Snapshot-Secrets": "kept" }),
      async (base) => {
        const client = new ApiClient(base, { token: "t1" });
        assert.equal(await client.snapshotRestore(path), "kept");
      },
    );
    assert.equal(seen[0]!.length, String(bytes.byteLength));
    assert.equal(seen[0]!.chunked, false);
    assert.equal(seen[0]!.token, "t1");
    assert.deepEqual(seen[0]!.body, bytes);
    await withServer(recorder([], 413, "snapshot is over the limit\nmore\n"), async (base) => {
      await assert.rejects(
        new ApiClient(base).snapshotRestore(path),
        (e) =>
          e instanceof ApiHttpError && e.status === 413 &&
          e.message.includes("snapshot is over the limit") && !e.message.includes("more"),
      );
    });
  } finally {
    await Deno.remove(path);
  }
});
