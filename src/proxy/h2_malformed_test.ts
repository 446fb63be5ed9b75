/**
 * A malformed HTTP/2 request (an upper-case header name, a `connection` header, a content-length
 * the DATA does not match, …) should cost only its stream (RFC 9113 §8.1.1). Deno 2.9.6's
 * `node:http2` (its nghttp2 binding) ends the whole connection with GOAWAY PROTOCOL_ERROR
 * instead, before any of berth's code sees the stream: a bare `node:http2` server does the same
 * (README, "HTTP/2"). Nothing malformed reaches an instance either way. These tests record
 * that; if they fail because only the stream is reset, Deno changed and the README note can go.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import type { Dispatch } from "./h2_frontend.ts";
import { getFrame, RawH2Client, requestBlock, testTls, withH2 } from "./_h2_testing.ts";

const { NGHTTP2_PROTOCOL_ERROR } = http2.constants;

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const MALFORMED: [string, [string, string][]][] = [
  ["an upper-case header name", [["X-Upper", "1"]]],
  ["a connection header", [["connection", "close"]]],
  ["te other than trailers", [["te", "gzip"]]],
];

/** Sends each malformed request on a new connection; the GOAWAY code each got (null: none). */
async function goawayCodes(port: number): Promise<(number | null)[]> {
  const codes: (number | null)[] = [];
  for (const [, extra] of MALFORMED) {
    const raw = await RawH2Client.connect(port);
    try {
      raw.send(getFrame(1, requestBlock("/", "web.test", extra)));
      await until(() => raw.closed || raw.resets().has(1) || raw.ended(1), "an answer");
      codes.push(raw.goawayCode);
    } finally {
      raw.close();
    }
  }
  return codes;
}

Deno.test("node:http2 (Deno 2.9.6) ends the connection on a malformed request, without berth's code", async () => {
  const t = testTls();
  const h2 = http2.createServer();
  h2.on("session", (s: http2.ServerHttp2Session) => s.on("error", () => {}));
  h2.on("stream", (s: http2.ServerHttp2Stream) => {
    s.on("error", () => {});
    s.respond({ ":status": 200 });
    s.end("ok");
  });
  const server = tls.createServer({ key: t.keyPem, cert: t.certPem, ALPNProtocols: ["h2"] });
  const sockets = new Set<tls.TLSSocket>();
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    h2.emit("connection", socket);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const codes = await goawayCodes((server.address() as AddressInfo).port);
    assert.deepEqual(codes, MALFORMED.map(() => NGHTTP2_PROTOCOL_ERROR));
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

Deno.test("H2Frontend: a malformed request never reaches dispatch (the connection ends, as above)", async () => {
  let dispatched = 0;
  const dispatch: Dispatch = (_req, res) => {
    dispatched++;
    res.writeHead(200, "", []);
    res.end();
  };
  await withH2({ dispatch }, async (port) => {
    const codes = await goawayCodes(port);
    assert.deepEqual(codes, MALFORMED.map(() => NGHTTP2_PROTOCOL_ERROR));
    assert.equal(dispatched, 0);
  });
});
