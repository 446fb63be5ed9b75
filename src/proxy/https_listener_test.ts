import assert from "node:assert/strict";
import net from "node:net";
import type tls from "node:tls";
import type { ConnInfo } from "./conn_info.ts";
import { HttpsListener, type HttpsListenerOptions } from "./https_listener.ts";
import type { ServedCert } from "./sni_index.ts";
import { tlsAlpnChallengeCertificate } from "../pki/mod.ts";
import { type AcmeAnswers, tlsAlpnHook } from "../acme/mod.ts";
import { rawClient, sClient, servedCert, servedSubject } from "./_testing.ts";

const A = servedCert(["a.test"]);
const WILD = servedCert(["*.w.test"]);
const DEF = servedCert(["default.test"], { isDefault: true });

/** Runs `fn` against a listener on a free loopback port that answers "hello" and closes. */
async function withListener(
  over: Partial<HttpsListenerOptions>,
  fn: (port: number, l: HttpsListener, served: ConnInfo[]) => Promise<void>,
): Promise<void> {
  const served: ConnInfo[] = [];
  const l = new HttpsListener({
    listen: { host: "127.0.0.1", port: 0 },
    certs: () => [A, WILD, DEF],
    admit: () => true,
    serveHttp1: (socket: tls.TLSSocket, conn: ConnInfo) => {
      served.push(conn);
      socket.end("hello\n");
    },
    log: () => {},
    ...over,
  });
  await l.start();
  try {
    await fn(l.address.port, l, served);
  } finally {
    await l.close();
  }
}

Deno.test("HttpsListener serves by SNI: exact name, then wildcard, then the default", async () => {
  await withListener({}, async (port, _l, served) => {
    const cases: [string[], string][] = [
      [["-servername", "a.test"], "a.test"],
      [["-servername", "b.w.test"], "wild.w.test"],
      [["-servername", "x.b.w.test"], "default.test"],
      [["-servername", "other.test"], "default.test"],
      [["-noservername"], "default.test"],
    ];
    for (const [args, subject] of cases) {
      // -ign_eof: wait for the server's close (under load stdin's end came before "hello").
      const out = await sClient(port, ["-ign_eof", ...args]);
      assert.equal(servedSubject(out), subject, `${args.join(" ")}:\n${out}`);
      assert.match(out, /hello/);
    }
    assert.equal(served[0]!.secure, true);
    assert.equal(served[0]!.servername, "a.test");
    assert.equal(served[4]!.servername, undefined);
  });
});

Deno.test("HttpsListener fails the handshake with an alert for an unknown name without a default", async () => {
  await withListener({ certs: () => [A] }, async (port, l, served) => {
    for (const args of [["-servername", "nope.test"], ["-noservername"]]) {
      const out = await sClient(port, args);
      assert.match(out, /SSL alert number \d+/, out);
      assert.equal(servedSubject(out), null);
    }
    assert.equal(served.length, 0);
    assert.equal(l.failedHandshakes, 2);
  });
});

Deno.test("HttpsListener speaks TLS 1.2 and 1.3, not 1.1", async () => {
  await withListener({}, async (port, _l, served) => {
    assert.match(await sClient(port, ["-tls1_2", "-servername", "a.test"]), /New, TLSv1\.2/);
    assert.match(await sClient(port, ["-tls1_3", "-servername", "a.test"]), /New, TLSv1\.3/);
    const old = await sClient(port, ["-tls1_1", "-servername", "a.test"]);
    assert.doesNotMatch(old, /hello/);
    assert.deepEqual(served.map((c) => c.tlsVersion), ["TLSv1.2", "TLSv1.3"]);
  });
});

Deno.test("HttpsListener resumes TLS 1.2 and 1.3 sessions from tickets", async () => {
  await withListener({}, async (port) => {
    const dir = await Deno.makeTempDir();
    try {
      for (const version of ["-tls1_2", "-tls1_3"]) {
        const sess = `${dir}/sess${version}`;
        const first = await sClient(port, [version, "-servername", "a.test", "-sess_out", sess]);
        assert.match(first, /^New,/m, first);
        const again = await sClient(port, [version, "-servername", "a.test", "-sess_in", sess]);
        assert.match(again, /^Reused,/m, again);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("HttpsListener negotiates http/1.1, and h2 only when an HTTP/2 frontend is given", async () => {
  await withListener({}, async (port, _l, served) => {
    const out = await sClient(port, ["-servername", "a.test", "-alpn", "h2,http/1.1"]);
    assert.match(out, /ALPN protocol: http\/1\.1/);
    assert.equal(served[0]!.alpn, "http/1.1");
  });
  const h2: ConnInfo[] = [];
  await withListener({
    h2: {
      serve: (socket, conn) => {
        h2.push(conn);
        socket.end();
      },
    },
  }, async (port, _l, served) => {
    const out = await sClient(port, ["-servername", "a.test", "-alpn", "h2,http/1.1"]);
    assert.match(out, /ALPN protocol: h2/);
    // No ALPN: HTTP/1.1 (-ign_eof: read until the server's close).
    assert.match(await sClient(port, ["-ign_eof", "-servername", "a.test"]), /hello/);
    assert.deepEqual(h2.map((c) => [c.alpn, c.servername]), [["h2", "a.test"]]);
    assert.equal(served.length, 1);
  });
});

Deno.test("HttpsListener answers acme-tls/1 through the hook while a validation is pending, other clients through TLS", async () => {
  const challenge = tlsAlpnChallengeCertificate("new.test", "token.thumbprint");
  let pending = true;
  const answers = {
    tlsAlpnPending: () => pending,
    tlsAlpn: (name: string) => name === "new.test" ? challenge : null,
  } as unknown as AcmeAnswers;
  const logged: string[] = [];
  const acmeTlsAlpn = tlsAlpnHook(answers, (l) => logged.push(l));
  const peers: (string | undefined)[] = [];
  await withListener({
    acmeTlsAlpn,
    certs: () => [A],
    serveHttp1: (socket) => {
      peers.push(socket.remoteAddress);
      socket.end("hello\n");
    },
  }, async (port) => {
    const out = await sClient(port, ["-servername", "new.test", "-alpn", "acme-tls/1"]);
    assert.match(out, /ALPN protocol: acme-tls\/1/, out);
    assert.match(out, /^New, TLSv1\.3/m);
    assert.doesNotMatch(out, /hello/);
    // Read first, then handed to node:tls: served as ever, with the client's address.
    const plain = await sClient(port, ["-ign_eof", "-servername", "a.test", "-alpn", "http/1.1"]);
    assert.equal(servedSubject(plain), "a.test");
    assert.match(plain, /hello/);
    assert.deepEqual(peers, ["127.0.0.1"]);
    // acme-tls/1 for a name under no validation: not answered by the hook; no certificate.
    const none = await sClient(port, ["-servername", "z.test", "-alpn", "acme-tls/1"]);
    assert.doesNotMatch(none, /ALPN protocol: acme-tls/);
    assert.equal(servedSubject(none), null);
    // Nothing pending: the hook is not asked, node:tls refuses acme-tls/1.
    pending = false;
    const after = await sClient(port, ["-servername", "new.test", "-alpn", "acme-tls/1"]);
    assert.doesNotMatch(after, /ALPN protocol: acme-tls/);
    assert.deepEqual(logged, []);
  });
});

Deno.test("HttpsListener.reload() serves a new certificate and skips a broken one with one line", async () => {
  let certs: ServedCert[] = [A];
  const log: string[] = [];
  const broken = { ...servedCert(["broken.test"]), keyPem: servedCert(["x.test"]).keyPem };
  await withListener({ certs: () => certs, log: (l) => log.push(l) }, async (port, l) => {
    assert.match(await sClient(port, ["-servername", "b.test"]), /alert/);
    certs = [A, servedCert(["b.test"]), broken];
    for (let i = 0; i < 2; i++) {
      l.reload();
      assert.equal(servedSubject(await sClient(port, ["-servername", "b.test"])), "b.test");
      assert.match(await sClient(port, ["-servername", "broken.test"]), /alert/);
    }
    assert.equal(log.filter((line) => line.includes("broken.test")).length, 1, log.join("\n"));
  });
});

/** Bytes that are no TLS ClientHello. */
const GARBAGE = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";

Deno.test("HttpsListener closes a connection that sends garbage or nothing within the handshake timeout", async () => {
  await withListener({ handshakeTimeoutMs: 200 }, async (port, l) => {
    const garbage = await rawClient(port, GARBAGE);
    assert.equal(garbage.closed, true);
    const silent = await rawClient(port, "");
    assert.equal(silent.closed, true);
    assert.equal(l.failedHandshakes, 2);
    assert.equal(l.handshaking, 0);
  });
});

Deno.test("HttpsListener closes handshakes past the limit per source address", async () => {
  await withListener({ handshakesPerIpMax: 2 }, async (port, l) => {
    const open: net.Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const s = net.connect(port, "127.0.0.1");
        s.on("error", () => {});
        open.push(s);
        await new Promise((r) => s.once("connect", r));
      }
      await waitUntil(() => l.handshaking === 2);
      const third = await rawClient(port, "");
      assert.equal(third.closed, true);
      assert.equal(l.handshaking, 2);
    } finally {
      for (const s of open) s.destroy();
    }
  });
});

async function waitUntil(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok());
}

Deno.test("HttpsListener closes the oldest handshake past handshakesMax", async () => {
  await withListener({ handshakesMax: 2 }, async (port, l) => {
    const open: net.Socket[] = [];
    const closed: number[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const s = net.connect(port, "127.0.0.1");
        s.on("error", () => {});
        s.once("close", () => closed.push(i));
        open.push(s);
        await new Promise((r) => s.once("connect", r));
        await waitUntil(() => l.handshaking + closed.length === i + 1);
      }
      await waitUntil(() => closed.length === 1);
      assert.deepEqual(closed, [0]);
      assert.equal(l.handshaking, 2);
    } finally {
      for (const s of open) s.destroy();
    }
  });
});
