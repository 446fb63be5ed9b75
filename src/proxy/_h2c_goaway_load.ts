/**
 * For h2c_goaway_load_test.ts, run in its own process (an nghttp2 abort in the proxy's h2c
 * client sessions must not take the test runner with it): an h2c instance that ends each
 * session with a graceful GOAWAY after `streamsPerSession` streams (as grpc-go's
 * GracefulStop or max-connection-age do), the proxy routing to it over h2c, and `requests`
 * HTTP/1.1 requests through the proxy, `concurrency` at a time. Prints a JSON line:
 * `{ statuses: {code: count}, goaways: n }`.
 *
 * @module
 */
import http2 from "node:http2";
import type net from "node:net";
import { request, spec, TestStore, withProxy } from "./_testing.ts";

const [requests, concurrency, streamsPerSession] = Deno.args.map(Number) as [
  number,
  number,
  number,
];
const server = http2.createServer();
let goaways = 0;
server.on("session", (s: http2.ServerHttp2Session) => {
  s.on("error", () => {});
  let streams = 0;
  s.on("stream", () => {
    if (++streams !== streamsPerSession) return;
    goaways++;
    s.close(); // GOAWAY; the streams under way finish
  });
});
server.on("stream", (stream: http2.ServerHttp2Stream) => {
  stream.on("error", () => {});
  stream.respond({ ":status": 200 });
  setTimeout(() => stream.end("ok"), 1);
});
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const ts = new TestStore();
const port = (server.address() as net.AddressInfo).port;
ts.register(spec({ id: "a", port, meta: { "berth.http.proto": "h2c" } }));
const statuses: Record<number, number> = {};
await withProxy(ts, {}, async (proxyPort) => {
  let next = 0;
  const worker = async () => {
    while (next < requests) {
      next++;
      const r = await request(proxyPort, "/").catch(() => ({ status: 0 }));
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
});
server.close();
console.log(JSON.stringify({ statuses, goaways }));
Deno.exit(0);
