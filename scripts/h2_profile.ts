/**
 * In-process HTTP/2 load check for the proxy's h2 path: an HttpProxy with HTTPS (test
 * certificate) in front of a node:http backend answering a tiny body, both in this process,
 * then waits for Ctrl-C. Drive it with h2load, e.g.
 *   deno run -A --cpu-prof --cpu-prof-dir=/tmp/prof scripts/h2_profile.ts 127.0.0.1:18443 &
 *   h2load -t1 -c32 -m10 -n 60000 https://127.0.0.1:18443/ -H 'host: web.test'
 *
 * @module
 */
import { spec, startBackend, TestStore } from "../src/proxy/_testing.ts";
import { servedTestCert } from "../src/proxy/_h2_testing.ts";
import { HttpProxy } from "../src/proxy/http_proxy.ts";

const [host, port] = (Deno.args[0] ?? "127.0.0.1:18443").split(":");
const backend = await startBackend("web", (_req, res) => res.end("hello"));
const ts = new TestStore();
ts.register(spec({ id: "web-1", port: backend.port }));
ts.check("web-1", "passing");
const proxy = new HttpProxy({
  source: ts.store,
  listen: null,
  edgeDomain: null,
  log: () => {},
  h2: true,
  tls: { listen: { host: host!, port: Number(port) }, certs: () => [servedTestCert()] },
});
await proxy.start();
console.error(`h2_profile: listening on ${host}:${port}, backend ${backend.port}`);
const stop = async () => {
  await proxy.close();
  await backend.close();
  ts.store.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
