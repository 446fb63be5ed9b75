/**
 * Helpers for the HTTPS listener's tests: served certificates made in-test (pki/testing.ts,
 * each with its own CA) and `openssl s_client` runs against a port.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import https from "node:https";
import type { Reply } from "./_testing.ts";
import { testEdgeCert } from "../pki/testing.ts";
import type { ServedCert } from "./sni_index.ts";

/** A served certificate for `names` (the first is its name) and the CA that signed it. */
export function servedCert(
  names: string[],
  over: Partial<ServedCert> = {},
): ServedCert & { caPem: string } {
  const t = testEdgeCert(names);
  const leaf = new X509Certificate(t.leafPem);
  return {
    name: names[0]!,
    names,
    certPem: t.certPem,
    keyPem: t.keyPem,
    isDefault: false,
    fingerprint: leaf.fingerprint256.replaceAll(":", "").toLowerCase(),
    notAfter: leaf.validToDate.getTime(),
    caPem: t.caPem,
    ...over,
  };
}

/** Longest an openssl run may take before it is killed (a failure, not a hang). */
const S_CLIENT_WAIT_MS = 10_000;

/**
 * Runs `openssl s_client -connect 127.0.0.1:PORT ARGS` with `stdin` as its input (after a
 * short wait, so a TLS 1.3 session ticket arrives before it quits); stdout and stderr together.
 */
export async function sClient(port: number, args: string[], stdin = ""): Promise<string> {
  const child = new Deno.Command("openssl", {
    args: ["s_client", "-connect", `127.0.0.1:${port}`, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), S_CLIENT_WAIT_MS);
  const w = child.stdin.getWriter();
  await new Promise((r) => setTimeout(r, 300));
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder();
  return text.decode(out.stdout) + text.decode(out.stderr);
}

/** The subject CN of the certificate s_client was served, or null. */
export function servedSubject(out: string): string | null {
  return /^subject=.*?CN\s*=\s*([^,\n]+)/m.exec(out)?.[1]?.trim() ?? null;
}

/** One HTTPS request to 127.0.0.1:`port` for `host` (SNI and Host), trusting `caPem`. */
export function httpsRequest(
  port: number,
  path: string,
  opts: { host: string; caPem: string; method?: string; headers?: Record<string, string> },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: "127.0.0.1",
      port,
      path,
      method: opts.method ?? "GET",
      servername: opts.host,
      ca: opts.caPem,
      agent: false,
      headers: { host: opts.host, ...opts.headers },
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => body += d);
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}
