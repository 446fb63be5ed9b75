/**
 * Binding the proxy's listeners (plain HTTP, HTTPS): one error line that names the flag to
 * change. With `reusePort` (proxy workers) every worker binds the same address (SO_REUSEPORT)
 * and the kernel spreads new connections over them.
 *
 * @module
 */
import type net from "node:net";
import type { HostPort } from "../lib/host_port.ts";
import { formatHostPort } from "../lib/host_port.ts";
import { errorText } from "../lib/error_text.ts";

/**
 * Listens on `addr`; resolves with the bound address (the real port for port 0). Throws
 * `proxy: cannot listen on ADDR: why (pick another address with --FLAG, or off)`. Later server
 * errors go to `log`.
 */
export async function listenOn(
  server: net.Server,
  addr: HostPort,
  o: { flag: string; log: (line: string) => void; reusePort?: boolean },
): Promise<HostPort> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ port: addr.port, host: addr.host, reusePort: o.reusePort === true }, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (e) {
    throw new Error(
      `proxy: cannot listen on ${formatHostPort(addr)}: ${errorText(e)} ` +
        `(pick another address with --${o.flag}, or off)`,
    );
  }
  server.on("error", (e) => o.log(`proxy: ${o.flag} server error: ${errorText(e)}`));
  const a = server.address() as net.AddressInfo;
  return { host: a.address, port: a.port };
}
