/**
 * A plain HTTP GET through berth's proxy with any Host header, for the e2e tests (re-exported by
 * test/harness.ts).
 *
 * @module
 */
import { request as httpRequest } from "node:http";

/** GET through the proxy with a Host header (node:http: fetch may not send a custom Host). */
export function proxyGet(
  port: number,
  host: string,
  path = "/",
  address = "127.0.0.1",
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: address, port, path, headers: { host }, agent: false, timeout: 5000 },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => body += d);
        res.on(
          "end",
          () => resolve({ status: res.statusCode ?? 0, body: body.trim(), headers: res.headers }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("proxy request timed out")));
    req.on("error", reject);
    req.end();
  });
}
