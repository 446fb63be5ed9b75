/**
 * Microbenchmark of the proxy's per-response head work: a typical instance response (nginx's
 * headers, a small body) through `ResponseParser.feed` and `responseHeaders`, as `Attempt` does
 * for each request. Several source trees alternate in one process, for before/after figures on
 * a machine whose load varies (git worktree add /tmp/old <commit>).
 *
 * Usage: deno run -A scripts/proxy_head_bench.ts [TREE…]   (default: this tree)
 *
 * @module
 */
import { Buffer } from "node:buffer";

const wire = Buffer.from(
  "HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nDate: Wed, 02 Dec 2026 03:00:00 GMT\r\n" +
    "Content-Type: application/octet-stream\r\nContent-Length: 23\r\n" +
    "Connection: keep-alive\r\n\r\nhello from the backend\n",
  "latin1",
);
const trees = Deno.args.length > 0 ? Deno.args : [new URL("../", import.meta.url).pathname];
let sink = 0;
const sides: { tree: string; run(): void; us: number[] }[] = [];
for (const tree of trees) {
  const root = new URL(tree.endsWith("/") ? tree : `${tree}/`, `file://${Deno.cwd()}/`);
  const { ResponseParser } = await import(new URL("src/proxy/response_parser.ts", root).href);
  const { responseHeaders } = await import(new URL("src/proxy/headers.ts", root).href);
  const p = new ResponseParser({
    onHead: (h: { headers: string[] }) => sink += responseHeaders(h.headers).length,
    onBody: (c: Uint8Array) => sink += c.length,
    onEnd: (reusable: boolean) => sink += reusable ? 1 : 0,
  });
  sides.push({
    tree,
    run: () => {
      p.reset(false);
      p.feed(wire);
    },
    us: [],
  });
}
const N = 200_000;
for (let round = 0; round < 12; round++) {
  for (const s of sides) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) s.run();
    if (round > 1) s.us.push((performance.now() - t0) * 1000 / N); // two warm-up rounds
  }
}
for (const s of sides) {
  const sorted = [...s.us].sort((a, b) => a - b);
  console.log(`${s.tree}: median ${sorted[sorted.length >> 1]!.toFixed(3)} µs per response`);
}
if (sink === 0) console.log("(nothing parsed)");
