/**
 * Whether an address is free before the workers bind it with SO_REUSEPORT: a socket of another
 * process of this user that set SO_REUSEPORT too (an old agent not yet gone, a second agent
 * given the same `--dns`) would otherwise share the port silently and answer a share of the
 * clients. The probe binds UDP and TCP without it: EADDRINUSE from either means taken.
 *
 * @module
 */
import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { isIPv6 } from "node:net";

/** Rejects with one line when `host`:`port` is taken for UDP or TCP; port 0 is never taken. */
export async function probeFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const udp = createSocket({ type: isIPv6(host) ? "udp6" : "udp4" });
  try {
    await new Promise<void>((resolve, reject) => {
      udp.once("error", reject);
      udp.bind(port, host, () => resolve());
    });
  } catch (e) {
    throw taken("UDP", host, port, e);
  } finally {
    try {
      udp.close();
    } catch { /* never bound */ }
  }
  const tcp = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen({ host, port }, () => resolve());
    });
  } catch (e) {
    throw taken("TCP", host, port, e);
  } finally {
    await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }
}

function taken(proto: string, host: string, port: number, e: unknown): Error {
  const code = (e as { code?: string }).code;
  const where = isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  return new Error(
    code === "EADDRINUSE"
      ? `dns: ${where} (${proto}) is in use by another process (another berth agent, or a DNS server)`
      : `dns: cannot bind ${where} (${proto}): ${(e as Error).message ?? String(e)}`,
  );
}
