/**
 * Clients for the HTTPS end-to-end tests and `deno task bench https`: a TLS probe (node:tls)
 * that says which certificate a listener serves for a server name and which ALPN protocol it
 * picks, and `curl` over HTTPS with `--resolve` (a real name, SNI and verification against a CA
 * file, as an operator would check an edge).
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import { connect } from "node:tls";

/** What a TLS listener served: the leaf's fingerprint (as pemFingerprint) and the ALPN pick. */
export interface ServedTls {
  fingerprint: string;
  /** Whether the chain verified against `ca` and names the server name (false without `ca`). */
  authorized: boolean;
  alpn: string | false;
  protocol: string | null;
}

/**
 * Connects to `host:port` with SNI `servername` (none when undefined) offering `alpn`, and
 * reports the certificate and protocol served; rejects on a handshake failure (an alert).
 * The handshake goes on whatever is served: the caller compares fingerprints, or reads
 * `authorized` (the chain verified against `ca`, when given, and names `servername`).
 */
export function probeTls(
  host: string,
  port: number,
  opts: { servername?: string; alpn?: string[]; ca?: string[]; timeoutMs?: number } = {},
): Promise<ServedTls> {
  return new Promise((resolve, reject) => {
    const s = connect({
      host,
      port,
      rejectUnauthorized: false,
      ...(opts.ca === undefined ? {} : { ca: opts.ca }),
      ...(opts.servername === undefined ? {} : { servername: opts.servername }),
      ALPNProtocols: opts.alpn ?? ["http/1.1"],
    });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`TLS probe of ${host}:${port} timed out`));
    }, opts.timeoutMs ?? 5_000);
    s.once("secureConnect", () => {
      clearTimeout(timer);
      const raw = s.getPeerCertificate().raw;
      const fingerprint = raw === undefined ? "" : new X509Certificate(raw).fingerprint256
        .replaceAll(":", "").toLowerCase();
      const served = {
        fingerprint,
        authorized: opts.ca !== undefined && s.authorized,
        alpn: s.alpnProtocol ?? false,
        protocol: s.getProtocol(),
      };
      s.destroy();
      resolve(served);
    });
    s.once("error", (e) => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    });
  });
}

export interface CurlResult {
  /** curl's exit code (0: a response came). */
  code: number;
  status: number;
  /** The HTTP version curl used ("1.1", "2"). */
  httpVersion: string;
  body: string;
  /** Response headers, lower-case names (the last value of each). */
  headers: Map<string, string>;
  /** curl's error text when code is not 0. */
  stderr: string;
}

/**
 * `curl` to `scheme://name:port/path` with `name` resolved to `address` (`--resolve`), verified
 * against `caCrt` when given (else `-k`). `http2`: `--http2` (ALPN h2, falls back to 1.1).
 */
export async function curlGet(
  opts: {
    name: string;
    port: number;
    address: string;
    path?: string;
    scheme?: "https" | "http";
    caCrt?: string;
    http2?: boolean;
    timeoutS?: number;
  },
): Promise<CurlResult> {
  const scheme = opts.scheme ?? "https";
  const args = [
    ...["-s", "-S", "-D", "-", "--max-time", String(opts.timeoutS ?? 5)],
    ...["--resolve", `${opts.name}:${opts.port}:${opts.address}`],
    ...(scheme === "https" ? (opts.caCrt === undefined ? ["-k"] : ["--cacert", opts.caCrt]) : []),
    ...(opts.http2 ? ["--http2"] : ["--http1.1"]),
    ...["-w", "\n@@%{http_version}"],
    `${scheme}://${opts.name}:${opts.port}${opts.path ?? "/"}`,
  ];
  const out = await new Deno.Command("curl", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr).trim();
  const versionAt = text.lastIndexOf("\n@@");
  const httpVersion = versionAt < 0 ? "" : text.slice(versionAt + 3).trim();
  const response = versionAt < 0 ? text : text.slice(0, versionAt);
  const split = response.indexOf("\r\n\r\n");
  const head = split < 0 ? response : response.slice(0, split);
  const body = split < 0 ? "" : response.slice(split + 4);
  const lines = head.split("\r\n");
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[0] ?? "")?.[1] ?? 0);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
  }
  return { code: out.code, status, httpVersion, body: body.trim(), headers, stderr };
}

export interface SClientResult {
  /** Whether the handshake completed (a certificate came and no alert). */
  ok: boolean;
  /** The served leaf's fingerprint (as pemFingerprint), "" when none came. */
  fingerprint: string;
  /** The ALPN protocol chosen, null when none. */
  alpn: string | null;
  /** stdout and stderr, for assertions on alerts and for failure messages. */
  output: string;
}

/**
 * `openssl s_client` to `host:port` with SNI `servername` (`-noservername` when undefined),
 * offering `alpn` (comma-separated, none when undefined); it sends nothing and ends at once.
 */
export async function sClient(
  host: string,
  port: number,
  opts: { servername?: string; alpn?: string } = {},
): Promise<SClientResult> {
  const args = [
    "s_client",
    ...["-connect", `${host}:${port}`],
    ...(opts.servername === undefined ? ["-noservername"] : ["-servername", opts.servername]),
    ...(opts.alpn === undefined ? [] : ["-alpn", opts.alpn]),
  ];
  const child = new Deno.Command("openssl", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await child.stdin.close();
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  const output = dec.decode(out.stdout) + dec.decode(out.stderr);
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(output)?.[0];
  const alpn = /^ALPN protocol: (\S+)/m.exec(output)?.[1] ?? null;
  const fingerprint = pem === undefined ? "" : new X509Certificate(pem).fingerprint256
    .replaceAll(":", "").toLowerCase();
  const alert = /alert/i.test(output);
  return { ok: out.success && pem !== undefined && !alert, fingerprint, alpn, output };
}
