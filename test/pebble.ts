/**
 * A real ACME CA for tests: Debian's `pebble` (Let's Encrypt's test CA) on free loopback ports,
 * with `pebble-challtestsrv` as the DNS server it resolves challenge names with (every A query
 * answers `resolveTo`, no AAAA) unless `dnsServer` points it elsewhere (berth's own DNS).
 * `PEBBLE_VA_NOSLEEP=1`: validation starts at once.
 *
 * Also two challenge responders a test can run on pebble's validation ports: `serveHttp01`
 * (GET /.well-known/acme-challenge/TOKEN) and `serveTlsAlpn01` (acme-tls/1 with an RFC 8737
 * certificate).
 *
 * ```ts
 * await using pebble = await startPebble();
 * const acme = new AcmeClient({ directoryUrl: pebble.directoryUrl, caCerts: [pebble.apiCaPem], … });
 * ```
 *
 * @module
 */
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { unusedPort } from "./ports.ts";
import { makeTestCerts } from "./test_certs.ts";

export interface PebbleOptions {
  /**
   * DNS server ("host:port") pebble resolves challenge names with. Default: a
   * pebble-challtestsrv started here, answering every A query with `resolveTo`.
   */
  dnsServer?: string;
  /** The address every name resolves to with the default DNS. Default 127.0.0.1. */
  resolveTo?: string;
  /** Port pebble connects to for HTTP-01. Default: a free port. */
  httpPort?: number;
  /** Port pebble connects to for TLS-ALPN-01. Default: a free port. */
  tlsPort?: number;
  /**
   * Extra environment, e.g. PEBBLE_WFE_NONCEREJECT (percent of good nonces refused, pebble's
   * default 5), PEBBLE_AUTHZREUSE (percent of authorizations reused, default 50).
   */
  env?: Record<string, string>;
  /** Lifetime of the certificates pebble issues, in seconds (pebble's default: 5 years). */
  certificateValiditySeconds?: number;
}

export interface Pebble {
  /** https://127.0.0.1:PORT/dir */
  directoryUrl: string;
  /** The CA of pebble's HTTPS API certificate (PEM): trust it for `directoryUrl`. */
  apiCaPem: string;
  /** The same, as a file (for `--acme-ca-cert`). */
  apiCaFile: string;
  httpPort: number;
  tlsPort: number;
  /** The DNS server pebble uses ("host:port"). */
  dnsServer: string;
  /** The root CA that signs issued certificates (PEM, from the management interface). */
  root(): Promise<string>;
  /** pebble's (and challtestsrv's) output so far. */
  log(): string;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const LOG_CHARS_MAX = 200_000;

/**
 * Starts pebble (and challtestsrv); resolves once the directory answers. Free ports are picked
 * before the children bind them, so a start that lost a port to another process is tried again
 * (up to 3 times) with new ones.
 */
export async function startPebble(o: PebbleOptions = {}): Promise<Pebble> {
  for (let attempt = 1;; attempt++) {
    try {
      return await startOnce(o);
    } catch (e) {
      if (attempt >= 3 || !/address already in use/.test(String(e))) throw e;
    }
  }
}

async function startOnce(o: PebbleOptions): Promise<Pebble> {
  const dir = await Deno.makeTempDir({ prefix: "berth-pebble-" });
  const children: Deno.ChildProcess[] = [];
  let log = "";
  const collect = async (name: string, stream: ReadableStream<Uint8Array>) => {
    const text = new TextDecoder();
    for await (const bytes of stream) {
      const chunk = text.decode(bytes, { stream: true });
      log += chunk.split("\n").map((l) => (l === "" ? l : `[${name}] ${l}`)).join("\n");
      if (log.length > LOG_CHARS_MAX) log = log.slice(-LOG_CHARS_MAX);
    }
  };
  let stopping = false;
  let exited: string | null = null;
  const spawn = (name: string, cmd: string, args: string[], env: Record<string, string>) => {
    const child = new Deno.Command(cmd, { args, env, cwd: dir, stdout: "piped", stderr: "piped" })
      .spawn();
    children.push(child);
    child.status.then((s) => {
      if (!stopping) exited ??= `${name} exited with code ${s.code}`;
    });
    collect(name, child.stdout).catch(() => {});
    collect(name, child.stderr).catch(() => {});
  };
  let http: Deno.HttpClient | undefined;
  let certsDir: string | undefined;
  const stop = async () => {
    stopping = true;
    if (certsDir !== undefined) await Deno.remove(certsDir, { recursive: true }).catch(() => {});
    http?.close();
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch { /* already gone */ }
      await c.status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const certs = await makeTestCerts(); // rustls refuses a self-signed leaf: CA + leaf
    certsDir = certs.dir;
    await Deno.copyFile(certs.crt, `${dir}/cert.pem`);
    await Deno.copyFile(certs.key, `${dir}/key.pem`);
    await Deno.copyFile(certs.caCrt, `${dir}/ca.pem`);
    const apiCaPem = await Deno.readTextFile(`${dir}/ca.pem`);
    const [apiPort, mgmtPort] = [await unusedPort(), await unusedPort()];
    const httpPort = o.httpPort ?? await unusedPort();
    const tlsPort = o.tlsPort ?? await unusedPort();
    let dnsServer = o.dnsServer;
    if (dnsServer === undefined) {
      dnsServer = `127.0.0.1:${await unusedPort()}`;
      spawn("challtestsrv", "pebble-challtestsrv", [
        ...["-dns01", dnsServer, "-http01", "", "-https01", "", "-tlsalpn01", ""],
        ...["-management", `127.0.0.1:${await unusedPort()}`],
        ...["-defaultIPv4", o.resolveTo ?? "127.0.0.1", "-defaultIPv6", ""],
      ], {});
    }
    await Deno.writeTextFile(
      `${dir}/pebble.json`,
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${apiPort}`,
          managementListenAddress: `127.0.0.1:${mgmtPort}`,
          certificate: "cert.pem",
          privateKey: "key.pem",
          httpPort,
          tlsPort,
          ocspResponderURL: "",
          externalAccountBindingRequired: false,
          ...(o.certificateValiditySeconds === undefined
            ? {}
            : { certificateValidityPeriod: o.certificateValiditySeconds }),
        },
      }),
    );
    spawn("pebble", "pebble", ["-config", "pebble.json", "-dnsserver", dnsServer], {
      PEBBLE_VA_NOSLEEP: "1",
      ...o.env,
    });
    http = Deno.createHttpClient({ caCerts: [apiCaPem] });
    const client = http;
    const directoryUrl = `https://127.0.0.1:${apiPort}/dir`;
    const get = async (url: string): Promise<string> => {
      const init: RequestInit & { client: Deno.HttpClient } = {
        client,
        signal: AbortSignal.timeout(5000),
      };
      const r = await fetch(url, init);
      const text = await r.text();
      if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status} ${text.slice(0, 200)}`);
      return text;
    };
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        await get(directoryUrl);
        break;
      } catch (e) {
        if (exited !== null || Date.now() > deadline) {
          await new Promise((r) => setTimeout(r, 100)); // the rest of its output
          throw new Error(`pebble did not start: ${exited ?? e}\n${log}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return {
      directoryUrl,
      apiCaPem,
      apiCaFile: `${dir}/ca.pem`,
      httpPort,
      tlsPort,
      dnsServer,
      root: () => get(`https://127.0.0.1:${mgmtPort}/roots/0`),
      log: () => log,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** A listener a test closes with `await using`. */
export interface Responder {
  port: number;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function closer(server: HttpServer): Responder {
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return {
    port: (server.address() as { port: number }).port,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Answers GET /.well-known/acme-challenge/TOKEN with `answer(token)` (404 when null). */
export async function serveHttp01(
  port: number,
  answer: (token: string) => string | null,
  host = "127.0.0.1",
): Promise<Responder> {
  const server = createHttpServer((req, res) => {
    const m = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? "");
    const body = m === null ? null : answer(m[1]!);
    res.writeHead(body === null ? 404 : 200, { "content-type": "text/plain" });
    res.end(body ?? "not found");
  });
  await new Promise<void>((resolve) => server.listen({ port, host }, resolve));
  return closer(server);
}

/**
 * Answers TLS-ALPN-01 for one name with `openssl s_server`: negotiates `acme-tls/1` and presents
 * `cert` (the RFC 8737 certificate). Not node:tls: Deno's TLS (rustls) refuses to load a
 * certificate with an unknown critical extension, and RFC 8737 requires acmeIdentifier critical.
 */
export async function serveTlsAlpn01(
  port: number,
  cert: { certPem: string; keyPem: string },
  host = "127.0.0.1",
): Promise<Responder> {
  const dir = await Deno.makeTempDir({ prefix: "berth-alpn-" });
  await Deno.writeTextFile(`${dir}/cert.pem`, cert.certPem);
  await Deno.writeTextFile(`${dir}/key.pem`, cert.keyPem);
  const child = new Deno.Command("openssl", {
    args: [
      ...["s_server", "-accept", `${host}:${port}`, "-cert", "cert.pem", "-key", "key.pem"],
      ...["-alpn", "acme-tls/1", "-quiet"],
    ],
    cwd: dir,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const close = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  for (let i = 0;; i++) {
    try {
      (await Deno.connect({ hostname: host, port })).close();
      break;
    } catch (e) {
      if (i > 100) {
        await close();
        throw new Error(`openssl s_server did not listen on ${host}:${port}: ${e}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { port, close, [Symbol.asyncDispose]: close };
}
