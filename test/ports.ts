/**
 * Ports for tests and scripts.
 *
 * @module
 */
import { createServer } from "node:net";

/**
 * A TCP port on `host` that nothing listens on right now (the kernel picks one for a listener,
 * which is closed at once): a target that refuses connections, or a port for a child to bind.
 */
export async function unusedPort(host = "127.0.0.1"): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.listen({ host, port: 0 }, () => resolve());
  });
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
