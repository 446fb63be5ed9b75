import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { Buffer } from "node:buffer";
import { ClusterKey } from "../pki/cluster_key.ts";
import { openEdgeKey, sealEdgeCert } from "../pki/edge_cert.ts";
import {
  rawClient,
  request,
  sClient,
  servedCert,
  servedSubject,
  spec,
  startBackend,
  TestStore,
  withProxy,
} from "./_testing.ts";
import { ServedCerts } from "./served_certs.ts";

const WEB = servedCert(["web.test"]);
const TLS = { listen: { host: "127.0.0.1", port: 0 }, certs: () => [WEB] };

async function curl(port: number, path: string, caPem: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/ca.pem`, caPem);
    const out = await new Deno.Command("curl", {
      args: [
        ...["-sS", "--max-time", "10", "--cacert", `${dir}/ca.pem`],
        ...["--resolve", `web.test:${port}:127.0.0.1`, `https://web.test:${port}${path}`],
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    assert.ok(out.success, text.decode(out.stderr));
    return text.decode(out.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("HttpProxy serves its routes over HTTPS with X-Forwarded-Proto https (curl --cacert)", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, { tls: TLS }, async (port, proxy) => {
      const tlsPort = proxy.httpsAddress.port;
      assert.equal(await curl(tlsPort, "/x?q=1", WEB.caPem), "a /x?q=1");
      assert.equal(a.seen.at(-1)!["x-forwarded-proto"], "https");
      assert.equal((await request(port, "/plain")).body, "a /plain");
      assert.equal(a.seen.at(-1)!["x-forwarded-proto"], "http");
      assert.equal(proxy.report().https, `127.0.0.1:${tlsPort}`);
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy tunnels an Upgrade over HTTPS with X-Forwarded-Proto https", async () => {
  const a = await startBackend("a", undefined, (req, socket) => {
    socket.end(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n" +
        `proto=${req.headers["x-forwarded-proto"]}`,
    );
  });
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, { tls: TLS }, async (_port, proxy) => {
      const s = tls.connect({
        port: proxy.httpsAddress.port,
        host: "127.0.0.1",
        servername: "web.test",
        ca: WEB.caPem,
      });
      let received = "";
      s.on("data", (d: Buffer) => received += d.toString());
      await new Promise((r) => s.once("secureConnect", r));
      s.write("GET /ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
      await new Promise((r) => s.once("close", r));
      assert.match(received, /^HTTP\/1\.1 101 /);
      assert.match(received, /proto=https$/);
    });
  } finally {
    await a.close();
  }
});

Deno.test("HttpProxy serves a certificate put in the store from the next handshake; one whose key does not open is left out, logged once", async () => {
  const ts = new TestStore();
  const box = ClusterKey.generate();
  const other = ClusterKey.generate();
  const log: string[] = [];
  const served = new ServedCerts({
    edgeCerts: () => ts.store.edgeCerts(),
    openKey: (c) => openEdgeKey(box, c),
    log: (l) => log.push(l),
  });
  const put = (
    key: ClusterKey,
    c: { name: string; certPem: string; keyPem: string; isDefault: boolean },
  ) =>
    ts.apply({
      type: "cert.put",
      cert: sealEdgeCert(key, { ...c, source: "manual", nowMs: Date.now() }),
    });
  await withProxy(ts, {
    tls: { listen: TLS.listen, certs: () => served.certs() },
    log: (l) => log.push(l),
  }, async (_port, proxy) => {
    const port = proxy.httpsAddress.port;
    assert.match(await sClient(port, ["-servername", "web.test"]), /alert/);
    put(box, WEB);
    assert.equal(servedSubject(await sClient(port, ["-servername", "web.test"])), "web.test");
    const sealedElsewhere = servedCert(["other.test"]);
    put(other, sealedElsewhere);
    put(box, servedCert(["third.test"]));
    assert.equal(servedSubject(await sClient(port, ["-servername", "third.test"])), "third.test");
    assert.match(await sClient(port, ["-servername", "other.test"]), /alert/);
    const lines = log.filter((l) => l.includes("other.test"));
    assert.equal(lines.length, 1, log.join("\n"));
    assert.match(lines[0]!, /certificate other\.test not served: its key: .*another cluster key/);
  });
});

Deno.test("HttpProxy's plain listener serves while HTTPS gets a flood of garbage and silent handshakes", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  const silent: net.Socket[] = [];
  try {
    await withProxy(ts, { tls: TLS }, async (port, proxy) => {
      const tlsPort = proxy.httpsAddress.port;
      for (let i = 0; i < 50; i++) {
        const s = net.connect(tlsPort, "127.0.0.1");
        s.on("error", () => {});
        silent.push(s);
      }
      const garbage = await Promise.all(
        Array.from({ length: 50 }, () => rawClient(tlsPort, Buffer.alloc(512, 0x16))),
      );
      assert.ok(garbage.every((g) => g.closed));
      assert.equal((await request(port, "/plain")).body, "a /plain");
      assert.equal(await curl(tlsPort, "/tls", WEB.caPem), "a /tls");
    });
  } finally {
    for (const s of silent) s.destroy();
    await a.close();
  }
});

Deno.test("HttpProxy counts TLS connections against connectionsMax with plain ones", async () => {
  const ts = new TestStore();
  await withProxy(ts, { tls: TLS, connectionsMax: 1 }, async (port, proxy) => {
    const plain = net.connect(port, "127.0.0.1");
    plain.on("error", () => {});
    await new Promise((r) => plain.once("connect", r));
    try {
      // The plain connection is served (it holds the one slot) once it is accepted.
      plain.write("GET / HTTP/1.1\r\nHost: none.test\r\n\r\n");
      await new Promise((r) => plain.once("data", r));
      const refused = await rawClient(proxy.httpsAddress.port, "");
      assert.deepEqual(refused, { received: "", closed: true });
    } finally {
      plain.destroy();
    }
  });
});

Deno.test("HttpProxy serves HTTPS alone when its plain listener is off", async () => {
  const a = await startBackend("a");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port }));
  try {
    await withProxy(ts, { listen: null, tls: TLS }, async (_port, proxy) => {
      assert.equal(await curl(proxy.httpsAddress.port, "/only", WEB.caPem), "a /only");
      assert.equal(proxy.report().listen, null);
    });
  } finally {
    await a.close();
  }
});
