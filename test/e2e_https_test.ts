/**
 * End to end, HTTPS at the edge on a real 3-member cluster (no Docker: services registered
 * through the API, backends served by this process): a certificate added with `berth cert add`
 * on one member is served by every member's HTTPS listener (the time printed), requests reach
 * the backend through every member with `X-Forwarded-Proto: https`, a member joining later
 * serves it too, `berth cert rm` stops it being served; SNI picks exact, then wildcard, then
 * the default certificate, else an alert; ALPN h2 (http/1.1 with `--proxy-h2=false`) and
 * `curl --http2`; redirect and HSTS labels; a garbage-handshake flood while plain HTTP, DNS and
 * KV writes keep working; malformed certificates and keys refused with one line (CLI and API).
 *
 * Certificates come from openssl (test/edge_certs.ts); TLS is checked with node:tls,
 * `openssl s_client` and `curl` (test/https_client.ts).
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import {
  type AgentProc,
  berthCli,
  kvPut,
  lookupA,
  proxyGet,
  startAgent,
  startCluster,
  stopAll,
} from "./harness.ts";
import { type EdgeCerts, makeEdgeCerts } from "./edge_certs.ts";
import { curlGet, probeTls, sClient } from "./https_client.ts";
import { waitFor } from "./wait.ts";
import { quantile } from "../scripts/bench/_tls_load.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

const WEB = "web.e2e.test";
const SECURE = "secure.e2e.test";
const WILD = "*.wild.e2e.test";
const DEFAULT = "default.e2e.test";

/** A backend answering `backend NAME` and keeping the headers of every request it got. */
async function startBackend(name: string): Promise<
  { port: number; seen: IncomingHttpHeaders[]; server: Server }
> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`backend ${name}\n`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  if (addr === null || typeof addr === "string") throw new Error("backend has no port");
  return { port: addr.port, seen, server };
}

async function register(a: AgentProc, id: string, port: number, meta: Record<string, string>) {
  const r = await fetch(`${a.httpUrl}/v1/agent/service/register`, {
    method: "PUT",
    body: JSON.stringify({ ID: id, Name: id, Address: "127.0.0.1", Port: port, Meta: meta }),
  });
  assert.equal(r.status, 200, await r.text());
}

/** `berth cert add` through member `a`; asserts it succeeded. */
async function certAdd(a: AgentProc, name: string, crt: string, key: string, ...flags: string[]) {
  const r = await berthCli(a, "cert", "add", "--name", name, ...flags, crt, key);
  assert.equal(r.code, 0, r.out);
}

/** Which certificate `a` serves for SNI `name`: its fingerprint, "" on a failed handshake. */
async function servedFor(a: AgentProc, name: string): Promise<string> {
  return await probeTls(a.host, a.httpsPort, { servername: name }).then(
    (s) => s.fingerprint,
    () => "",
  );
}

/**
 * Polls every member concurrently until each serves `fingerprint` for `name`; returns the ms
 * each took from `t0` (performance.now()).
 */
function untilServed(
  members: AgentProc[],
  name: string,
  fingerprint: string,
  t0: number,
): Promise<number[]> {
  return Promise.all(
    members.map((a) =>
      waitFor(`${a.node} to serve ${fingerprint.slice(0, 12)}… for ${name}`, async () => {
        return (await servedFor(a, name)) === fingerprint ? performance.now() - t0 : undefined;
      }, { timeoutMs: 15_000, intervalMs: 10 })
    ),
  );
}

Deno.test({
  name:
    "e2e https: certificates added on one member are served by all (and a later joiner), with SNI, ALPN, h2, X-Forwarded-Proto, redirect/HSTS, removal and bad files refused",
  ...e2e,
  async fn(t) {
    const certs: EdgeCerts = await makeEdgeCerts({
      web: [WEB, SECURE],
      wild: [WILD],
      dflt: [DEFAULT],
    });
    const backend = await startBackend("web");
    const members = await startCluster(3, { args: ["--proxy-h2"] });
    const all = [...members];
    try {
      const [a1, a2] = members as [AgentProc, AgentProc, AgentProc];
      await register(a1, "web", backend.port, { "berth.http.host": WEB });
      await register(a1, "secure", backend.port, {
        "berth.http.host": SECURE,
        "berth.http.redirect": "https",
        "berth.http.hsts": "max-age=31536000; includeSubDomains",
      });

      await t.step("no certificate yet: a handshake for any name ends in an alert", async () => {
        for (const a of members) {
          const r = await sClient(a.host, a.httpsPort, { servername: WEB });
          assert.equal(r.ok, false, r.output);
          assert.match(r.output, /alert/i);
        }
      });

      await t.step("a certificate added on one member is served by every member", async () => {
        const web = certs.leaf("web");
        const t0 = performance.now();
        await certAdd(a2, WEB, web.crt, web.key);
        const cli = performance.now() - t0;
        const ms = await untilServed(members, WEB, web.fingerprint, t0);
        console.log(
          `  cert add on ${a2.node} returned after ${cli.toFixed(0)} ms; every member served ` +
            `it ${ms.map((x) => x.toFixed(0)).join(", ")} ms after the command started ` +
            `(${ms.map((x) => (x - cli).toFixed(0)).join(", ")} ms after it returned)`,
        );
      });

      await t.step(
        "curl --cacert reaches the backend through every member, XFP https",
        async () => {
          for (const a of members) {
            backend.seen.length = 0;
            const r = await curlGet({
              name: WEB,
              port: a.httpsPort,
              address: a.host,
              caCrt: certs.caCrt,
            });
            assert.equal(r.code, 0, r.stderr);
            assert.equal(r.status, 200);
            assert.equal(r.body, "backend web");
            assert.equal(r.httpVersion, "1.1");
            assert.equal(backend.seen.length, 1);
            assert.equal(backend.seen[0]!["x-forwarded-proto"], "https");
          }
          // And plain HTTP says http.
          backend.seen.length = 0;
          const plain = await proxyGet(a1.proxyPort, WEB, "/", a1.host);
          assert.equal(plain.status, 200);
          assert.equal(backend.seen[0]!["x-forwarded-proto"], "http");
        },
      );

      await t.step("curl --http2 gets HTTP/2 through every member", async () => {
        for (const a of members) {
          const r = await curlGet({
            name: WEB,
            port: a.httpsPort,
            address: a.host,
            caCrt: certs.caCrt,
            http2: true,
          });
          assert.equal(r.code, 0, r.stderr);
          assert.equal(r.status, 200);
          assert.equal(r.httpVersion, "2");
          assert.equal(r.body, "backend web");
          // X-Forwarded-Proto https on HTTP/2 too.
          assert.equal(backend.seen.at(-1)!["x-forwarded-proto"], "https");
        }
      });

      await t.step("SNI: exact, wildcard one label deep, default, else an alert", async () => {
        const wild = certs.leaf("wild");
        const dflt = certs.leaf("dflt");
        const web = certs.leaf("web");
        await certAdd(a1, WILD, wild.crt, wild.key);
        await untilServed(members, "a.wild.e2e.test", wild.fingerprint, performance.now());
        for (const a of members) {
          const exact = await sClient(a.host, a.httpsPort, { servername: WEB });
          assert.ok(exact.ok, exact.output);
          assert.equal(exact.fingerprint, web.fingerprint);
          const wildcard = await sClient(a.host, a.httpsPort, { servername: "a.wild.e2e.test" });
          assert.ok(wildcard.ok, wildcard.output);
          assert.equal(wildcard.fingerprint, wild.fingerprint);
          for (const name of ["unknown.e2e.test", "wild.e2e.test", "b.a.wild.e2e.test"]) {
            const r = await sClient(a.host, a.httpsPort, { servername: name });
            assert.equal(r.ok, false, `${name}: ${r.output}`);
            assert.match(r.output, /alert/i, name);
          }
        }
        await certAdd(a1, DEFAULT, dflt.crt, dflt.key, "--default");
        await untilServed(members, "unknown.e2e.test", dflt.fingerprint, performance.now());
        for (const a of members) {
          for (const name of ["unknown.e2e.test", "wild.e2e.test", "b.a.wild.e2e.test"]) {
            const r = await sClient(a.host, a.httpsPort, { servername: name });
            assert.ok(r.ok, r.output);
            assert.equal(r.fingerprint, dflt.fingerprint, name);
          }
          const noSni = await sClient(a.host, a.httpsPort, {});
          assert.ok(noSni.ok, noSni.output);
          assert.equal(noSni.fingerprint, dflt.fingerprint);
          // The exact and wildcard certificates still win over the default.
          assert.equal(
            (await sClient(a.host, a.httpsPort, { servername: WEB })).fingerprint,
            web.fingerprint,
          );
          assert.equal(
            (await sClient(a.host, a.httpsPort, { servername: "z.wild.e2e.test" })).fingerprint,
            wild.fingerprint,
          );
        }
      });

      await t.step("ALPN (--proxy-h2): h2 when offered, http/1.1 when only it is", async () => {
        for (const a of members) {
          const both = await sClient(a.host, a.httpsPort, { servername: WEB, alpn: "h2,http/1.1" });
          assert.equal(both.alpn, "h2", both.output);
          const h1 = await sClient(a.host, a.httpsPort, { servername: WEB, alpn: "http/1.1" });
          assert.equal(h1.alpn, "http/1.1", h1.output);
        }
      });

      await t.step("redirect label: 308 over plain HTTP, HSTS over HTTPS", async () => {
        for (const a of members) {
          const plain = await curlGet({
            scheme: "http",
            name: SECURE,
            port: a.proxyPort,
            address: a.host,
            path: "/some/path?q=1",
          });
          assert.equal(plain.status, 308, plain.stderr);
          const location = plain.headers.get("location") ?? "";
          assert.match(location, /^https:\/\/secure\.e2e\.test(:\d+)?\/some\/path\?q=1$/);
          assert.equal(plain.headers.get("strict-transport-security"), undefined);
          const tls = await curlGet({
            name: SECURE,
            port: a.httpsPort,
            address: a.host,
            caCrt: certs.caCrt,
          });
          assert.equal(tls.status, 200, tls.stderr);
          assert.equal(
            tls.headers.get("strict-transport-security"),
            "max-age=31536000; includeSubDomains",
          );
          // A service without the labels is served over plain HTTP and gets no HSTS over TLS.
          const web = await curlGet({
            name: WEB,
            port: a.httpsPort,
            address: a.host,
            caCrt: certs.caCrt,
          });
          assert.equal(web.headers.get("strict-transport-security"), undefined);
        }
      });

      await t.step("a member that joins later serves the certificates too", async () => {
        const late = await startAgent({
          host: "127.0.0.4",
          bootstrap: false,
          join: [a1.clusterAddr],
          docker: false,
          args: ["--proxy-h2=false"],
        });
        all.push(late);
        const t0 = performance.now();
        const [ms] = await untilServed([late], WEB, certs.leaf("web").fingerprint, t0);
        console.log(`  the member started later served it ${ms!.toFixed(0)} ms after its API`);
        const r = await curlGet({
          name: WEB,
          port: late.httpsPort,
          address: late.host,
          caCrt: certs.caCrt,
        });
        assert.equal(r.status, 200, r.stderr);
        assert.equal(r.body, "backend web");
        // Started with --proxy-h2=false: http/1.1 even to a client offering h2 first.
        const alpn = await sClient(late.host, late.httpsPort, {
          servername: WEB,
          alpn: "h2,http/1.1",
        });
        assert.ok(alpn.ok, alpn.output);
        assert.equal(alpn.alpn, "http/1.1");
      });

      await t.step("berth cert rm stops every member serving it", async () => {
        const rm = await berthCli(a1, "cert", "rm", WEB);
        assert.equal(rm.code, 0, rm.out);
        const dflt = certs.leaf("dflt").fingerprint;
        await untilServed(all, WEB, dflt, performance.now());
        const list = await berthCli(a1, "cert", "list");
        assert.equal(list.code, 0, list.out);
        assert.doesNotMatch(list.out, /web\.e2e\.test/);
        assert.match(list.out, /default\.e2e\.test/);
      });

      await t.step("malformed certificate and key files are refused with one line", async () => {
        const dir = certs.dir;
        await Deno.writeTextFile(`${dir}/garbage.pem`, "this is not a certificate\n");
        await Deno.writeTextFile(
          `${dir}/broken.pem`,
          "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        const web = certs.leaf("web");
        const wild = certs.leaf("wild");
        const cases: [string, string, RegExp][] = [
          [`${dir}/garbage.pem`, web.key, /certificate|PEM/i],
          [`${dir}/broken.pem`, web.key, /certificate/i],
          [web.crt, `${dir}/garbage.pem`, /key/i],
          [web.crt, wild.key, /key/i],
          [`${dir}/missing.pem`, web.key, /missing\.pem/],
          [web.key, web.crt, /certificate|key/i],
        ];
        for (const [crt, key, what] of cases) {
          const r = await berthCli(a1, "cert", "add", "--name", "bad.e2e.test", crt, key);
          assert.notEqual(r.code, 0, `${crt} ${key}: ${r.out}`);
          const lines = r.out.trim().split("\n");
          assert.equal(lines.length, 1, `one line for ${crt} ${key}:\n${r.out}`);
          assert.match(lines[0]!, what);
        }
        // The API refuses the same with one 400 line, through any member.
        const webPem = await Deno.readTextFile(web.crt);
        const webKey = await Deno.readTextFile(web.key);
        const bodies: [string, RegExp][] = [
          [JSON.stringify({ certPem: "garbage", keyPem: webKey }), /certPem/],
          [JSON.stringify({ certPem: webPem, keyPem: "garbage" }), /keyPem/],
          [JSON.stringify({ certPem: webPem, keyPem: await Deno.readTextFile(wild.key) }), /key/],
          [JSON.stringify({ certPem: webPem, keyPem: webKey, default: "yes" }), /default/],
          [JSON.stringify({ certPem: webPem }), /keyPem/],
          ["{not json", /JSON/i],
        ];
        for (const [i, [body, what]] of bodies.entries()) {
          const a = members[i % members.length]!;
          const r = await fetch(`${a.httpUrl}/v1/berth/certs/bad.e2e.test`, {
            method: "PUT",
            body,
          });
          const text = (await r.text()).trim();
          assert.equal(r.status, 400, `${body.slice(0, 60)}: ${text}`);
          assert.equal(text.split("\n").length, 1, text);
          assert.match(text, what);
        }
        const list = await berthCli(a1, "cert", "list");
        assert.doesNotMatch(list.out, /bad\.e2e\.test/);
      });
    } finally {
      await stopAll(all);
      backend.server.close();
      await certs.remove();
    }
  },
});

/** Random bytes, sometimes behind a TLS handshake record header (so a parser reads further). */
function garbage(): Uint8Array {
  const body = crypto.getRandomValues(new Uint8Array(64 + Math.floor(Math.random() * 2048)));
  if (Math.random() < 0.5) return body;
  const header = Uint8Array.of(0x16, 0x03, 0x01, body.length >> 8, body.length & 0xff);
  const out = new Uint8Array(header.length + body.length);
  out.set(header);
  out.set(body, header.length);
  return out;
}

/** One garbage connection: connect, write, wait up to `lingerMs` for the server to close. */
async function garbageConnection(host: string, port: number, lingerMs: number): Promise<void> {
  const conn = await Deno.connect({ hostname: host, port });
  try {
    await conn.write(garbage()).catch(() => 0);
    const buf = new Uint8Array(1024);
    const read = conn.read(buf).catch(() => null);
    await Promise.race([read, new Promise((r) => setTimeout(r, lingerMs))]);
  } finally {
    try {
      conn.close();
    } catch { /* closed by the server */ }
  }
}

/** Latencies of a loop of `op` until `done()`; every failure is kept. */
async function keepDoing(
  op: () => Promise<void>,
  done: () => boolean,
): Promise<{ ms: number[]; failures: string[] }> {
  const ms: number[] = [];
  const failures: string[] = [];
  while (!done()) {
    const t0 = performance.now();
    try {
      await op();
      ms.push(performance.now() - t0);
    } catch (e) {
      failures.push(e instanceof Error ? e.message : String(e));
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { ms, failures };
}

function latencyLine(what: string, ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  return `${what}: ${s.length} ok, p50 ${quantile(s, 0.5).toFixed(1)} ms, p99 ${
    quantile(s, 0.99).toFixed(1)
  } ms, max ${(s.at(-1) ?? NaN).toFixed(1)} ms`;
}

/** Garbage connections to the HTTPS port in all. */
const FLOOD_CONNECTIONS = 2_000;
/** Of them open at once. */
const FLOOD_CONCURRENCY = 100;

Deno.test({
  name:
    "e2e https: a garbage-handshake flood on the HTTPS port leaves plain HTTP, DNS and KV writes working",
  ...e2e,
  async fn() {
    const certs = await makeEdgeCerts({ web: [WEB] });
    const backend = await startBackend("web");
    const members = await startCluster(3);
    try {
      const a1 = members[0]!;
      await register(a1, "web", backend.port, { "berth.http.host": WEB });
      const web = certs.leaf("web");
      await certAdd(a1, WEB, web.crt, web.key);
      await untilServed(members, WEB, web.fingerprint, performance.now());
      await waitFor(
        "web in DNS",
        async () => (await lookupA(a1.dnsPort, "web.service.berth", a1.host)).length > 0,
      );
      let finished = false;
      let seq = 0;
      const http = keepDoing(async () => {
        const r = await proxyGet(a1.proxyPort, WEB, "/", a1.host);
        if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
      }, () => finished);
      const dns = keepDoing(async () => {
        const a = await lookupA(a1.dnsPort, "web.service.berth", a1.host);
        if (a.length === 0) throw new Error("no DNS answer");
      }, () => finished);
      const kv = keepDoing(async () => {
        if (!await kvPut(members[seq % 3]!, `flood/${seq++}`, "v")) throw new Error("KV false");
      }, () => finished);
      const t0 = performance.now();
      let started = 0;
      let refused = 0;
      await Promise.all(Array.from({ length: FLOOD_CONCURRENCY }, async () => {
        while (started < FLOOD_CONNECTIONS) {
          started++;
          await garbageConnection(a1.host, a1.httpsPort, 500).catch(() => refused++);
        }
      }));
      const floodMs = performance.now() - t0;
      finished = true;
      const [h, d, k] = await Promise.all([http, dns, kv]);
      console.log(
        `  ${FLOOD_CONNECTIONS} garbage connections (${FLOOD_CONCURRENCY} at a time) in ` +
          `${floodMs.toFixed(0)} ms, ${refused} refused; meanwhile\n  ` +
          [
            latencyLine("plain HTTP", h.ms),
            latencyLine("DNS", d.ms),
            latencyLine("KV writes", k.ms),
          ]
            .join("\n  "),
      );
      assert.deepEqual(h.failures, []);
      assert.deepEqual(d.failures, []);
      assert.deepEqual(k.failures, []);
      assert.ok(h.ms.length > 0 && d.ms.length > 0 && k.ms.length > 0);
      // And the HTTPS listener itself still serves.
      const r = await curlGet({
        name: WEB,
        port: a1.httpsPort,
        address: a1.host,
        caCrt: certs.caCrt,
      });
      assert.equal(r.status, 200, r.stderr);
      assert.equal(r.body, "backend web");
    } finally {
      await stopAll(members);
      backend.server.close();
      await certs.remove();
    }
  },
});
