/**
 * A bare `node:http2` server over TLS for h2_goaway_crash_test.ts, run in its own process (an
 * nghttp2 abort must not take the test runner with it): `deno run -A _h2_crash_server.ts
 * guarded|bare` (certificate and key PEM in $CERT_PEM and $KEY_PEM) prints its port and answers
 * every stream `200 ok` until killed. `guarded` puts each connection behind GoawayGuard, as
 * H2Frontend does.
 *
 * @module
 */
import http2 from "node:http2";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { GoawayGuard } from "./goaway_guard.ts";

const guarded = Deno.args[0] === "guarded";
const h2 = http2.createServer();
h2.on("session", (s: http2.ServerHttp2Session) => s.on("error", () => {}));
h2.on("stream", (s: http2.ServerHttp2Stream) => {
  s.on("error", () => {});
  s.respond({ ":status": 200 });
  s.end("ok");
});
const server = tls.createServer(
  { key: Deno.env.get("KEY_PEM"), cert: Deno.env.get("CERT_PEM"), ALPNProtocols: ["h2"] },
  (socket) => {
    socket.on("error", () => {});
    if (!guarded) return void h2.emit("connection", socket);
    let session: http2.ServerHttp2Session | undefined;
    h2.once("session", (s: http2.ServerHttp2Session) => session = s);
    h2.emit("connection", new GoawayGuard(socket, () => session?.close()));
  },
);
server.listen(0, "127.0.0.1", () => console.log((server.address() as AddressInfo).port));
