/**
 * Whether an address is free before worker threads bind it with SO_REUSEPORT: a socket of
 * another process of this user that set SO_REUSEPORT too (an old agent not yet gone, a second
 * agent given the same address) would otherwise share the port silently and serve a share of
 * the clients. The probe binds without it (TCP, and UDP when asked): EADDRINUSE means taken.
 *
 * @module
 */
import { createSocket } from "node:dgram";
import { createServer, isIPv6 } from "node:net";
import { errorText } from "./error_text.ts";

/**
 * Why `host`:`port` cannot be bound for TCP (or first UDP, with `udp`), e.g. `UDP: address in use by
 * another process (another berth agent?)`; null when it can. Port 0 is always free.
 */
export async function portProblem(
  at: { host: string; port: number },
  opts: { udp?: boolean } = {},
): Promise<string | null> {
  const { host, port } = at;
  if (port === 0) return null;
  if (opts.udp) {
    const udp = createSocket({ type: isIPv6(host) ? "udp6" : "udp4" });
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind(port, host, () => resolve());
      });
    } catch (e) {
      return problem("UDP", e);
    } finally {
      try {
        udp.close();
      } catch { /* never bound */ }
    }
  }
  const tcp = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen({ host, port }, () => resolve());
    });
    return null;
  } catch (e) {
    return problem("TCP", e);
  } finally {
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }
}

function problem(proto: string, e: unknown): string {
  return (e as { code?: string }).code === "EADDRINUSE"
    ? `${proto}: address in use by another process (another berth agent?)`
    : `${proto}: ${errorText(e)}`;
}
