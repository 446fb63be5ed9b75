/**
 * Health checks of an instance with `berth.proxy-protocol=v1|v2` (README "PROXY protocol"):
 * such an instance (nginx `listen … proxy_protocol`, HAProxy `accept-proxy`) refuses a
 * connection that does not start with a PROXY header, so each check connection starts with the
 * header the protocol defines for the sender's own connections: v2 `LOCAL` (no addresses), v1
 * `PROXY UNKNOWN\r\n`, as HAProxy's `check-send-proxy` does.
 *
 * HTTP checks of such an instance are sent over a plain socket here (`node:http` in Deno 2.9.6
 * ignores `createConnection`, so it cannot write the header first): one `GET` with
 * `connection: close`, read up to the end of the response headers.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import { parseProxyProtocol, PROXY_PROTOCOL_KEY } from "../store/mod.ts";

/** The v2 signature (the PROXY protocol's 12 fixed bytes). */
const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** The header of a connection of the sender's own: v2 LOCAL/UNSPEC, v1 `PROXY UNKNOWN`. */
export function proxyLocalHeader(version: 1 | 2): Uint8Array {
  if (version === 1) return new TextEncoder().encode("PROXY UNKNOWN\r\n");
  // Version 2, command LOCAL; family and transport UNSPEC; no address bytes.
  return Uint8Array.of(...V2_SIGNATURE, 0x20, 0x00, 0x00, 0x00);
}

/** The PROXY protocol version an instance's meta asks for, or undefined. */
export function proxyVersionOfMeta(meta: Readonly<Record<string, string>> | undefined) {
  const v = meta?.[PROXY_PROTOCOL_KEY];
  if (v === undefined) return undefined;
  try {
    return parseProxyProtocol(v);
  } catch {
    return undefined; // the store keeps canonical values; anything else sends nothing
  }
}

/** A TCP connection to `address:port` whose first bytes are the LOCAL header. */
export function connectWithLocalHeader(address: string, port: number, version: 1 | 2) {
  const socket = net.connect({ host: address, port });
  socket.write(proxyLocalHeader(version));
  return socket;
}

/**
 * GET `path` on a connection that starts with the LOCAL header; resolves with the status line
 * once the response headers have arrived (at most `headerBytesMax`), the socket destroyed.
 */
export function proxiedHttpGet(
  target: { address: string; port: number; path: string },
  version: 1 | 2,
  headerBytesMax: number,
  signal: AbortSignal,
): Promise<{ statusCode: number; statusText: string }> {
  return new Promise((resolve, reject) => {
    const socket = connectWithLocalHeader(target.address, target.port, version);
    const host = target.address.includes(":") ? `[${target.address}]` : target.address;
    socket.write(
      `GET ${target.path} HTTP/1.1\r\nhost: ${host}:${target.port}\r\n` +
        "user-agent: berth-health-check\r\naccept: */*\r\nconnection: close\r\n\r\n",
    );
    let got = Buffer.alloc(0);
    const finish = (e: Error | null, r?: { statusCode: number; statusText: string }) => {
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      if (e !== null) reject(e);
      else resolve(r!);
    };
    const onAbort = () => finish(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    socket.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const end = got.indexOf("\r\n\r\n");
      if (end < 0 && got.length <= headerBytesMax) return;
      if (end < 0 || end > headerBytesMax) return finish(codeError("HPE_HEADER_OVERFLOW"));
      const m = /^HTTP\/1\.[01] (\d{3})(?: ([^\r\n]*))?\r\n/.exec(
        got.toString("latin1", 0, end + 2),
      );
      if (m === null) return finish(codeError("HPE_INVALID_CONSTANT"));
      finish(null, { statusCode: Number(m[1]), statusText: m[2] ?? "" });
    });
    socket.on("error", (e) => finish(e));
    socket.on("end", () => finish(new Error("connection closed before the response")));
    if (signal.aborted) onAbort();
  });
}

function codeError(code: string): Error {
  return Object.assign(new Error(code), { code });
}
