import assert from "node:assert/strict";
import net from "node:net";
import {
  type Backend,
  heldWebA,
  httpsRequest,
  type Reply,
  request,
  spec,
  startBackend,
  TestStore,
  withProxy,
} from "./_testing.ts";
import { h2Connect, h2Request, testTls, withH2Proxy } from "./_h2_testing.ts";
import { stickyToken } from "./rendezvous.ts";
import { unusedPort } from "../../test/ports.ts";
import { waitFor } from "../../test/wait.ts";

async function closeAll(bs: Backend[]): Promise<void> {
  await Promise.all(bs.map((b) => b.close()));
}

/** Two backends `a` and `b` registered as web-a and web-b with `meta`. */
async function twoBackends(
  meta: Record<string, string>,
): Promise<{ ts: TestStore; a: Backend; b: Backend }> {
  const a = await startBackend("a");
  const b = await startBackend("b");
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: a.port, meta }));
  ts.register(spec({ id: "web-b", port: b.port, meta }));
  return { ts, a, b };
}

/** The backend name a reply came from (`a /path` → `a`). */
const from = (r: Reply) => r.body.split(" ")[0]!;

/** The cookie pair a Set-Cookie header sets (`name=value`), or undefined. */
function cookiePair(r: Reply): string | undefined {
  return r.headers["set-cookie"]?.[0]?.split(";")[0];
}

Deno.test("HttpProxy with berth.lb=hash header:X-User sends each user to one instance, others round robin", async () => {
  const { ts, a, b } = await twoBackends({ "berth.lb": "hash", "berth.lb.hash": "header:X-User" });
  try {
    await withProxy(ts, {}, async (port) => {
      const seen = new Set<string>();
      for (let u = 0; u < 16; u++) {
        const headers = { "x-user": `user-${u}` };
        const first = from(await request(port, "/", { headers }));
        seen.add(first);
        for (let i = 0; i < 3; i++) {
          assert.equal(from(await request(port, "/", { headers })), first, `user-${u}`);
        }
      }
      assert.deepEqual([...seen].sort(), ["a", "b"], "16 users all hashed to one instance");
      // Without the header: round robin.
      const plain = [];
      for (let i = 0; i < 4; i++) plain.push(from(await request(port, "/")));
      assert.deepEqual(plain, ["a", "b", "a", "b"]);
    });
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("HttpProxy with berth.lb=hash cookie:sid hashes the cookie's value", async () => {
  const { ts, a, b } = await twoBackends({ "berth.lb": "hash", "berth.lb.hash": "cookie:sid" });
  try {
    await withProxy(ts, {}, async (port) => {
      const seen = new Set<string>();
      for (let u = 0; u < 16; u++) {
        const headers = { cookie: `theme=dark; sid=s${u}` };
        const first = from(await request(port, "/", { headers }));
        seen.add(first);
        assert.equal(from(await request(port, "/", { headers })), first);
      }
      assert.equal(seen.size, 2);
    });
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("HttpProxy with berth.lb=sticky_cookie sets the cookie once and keeps the client on its instance", async () => {
  const { ts, a, b } = await twoBackends({ "berth.lb": "sticky_cookie" });
  try {
    await withProxy(ts, {}, async (port, proxy) => {
      const first = await request(port, "/");
      const set = first.headers["set-cookie"];
      assert.equal(set?.length, 1);
      const [pair, ...attrs] = set![0]!.split("; ");
      const owner = from(first);
      assert.equal(pair, `berth_web=${stickyToken(`web-${owner}`)}`);
      assert.deepEqual(attrs, ["Path=/", "HttpOnly", "SameSite=Lax"]);
      assert.ok(!set![0]!.includes("127.0.0.1"));
      // The cookie keeps it there (round robin would alternate); a matching cookie is not set again.
      for (let i = 0; i < 4; i++) {
        const r = await request(port, "/", { headers: { cookie: pair! } });
        assert.equal(from(r), owner);
        assert.equal(r.headers["set-cookie"], undefined);
      }
      // Without the cookie the first pick is round robin (no client-IP hash: one NAT or CDN
      // would send every new session to one instance), each answer setting its cookie.
      const firsts = [await request(port, "/"), await request(port, "/")];
      assert.deepEqual(firsts.map(from).sort(), ["a", "b"]);
      for (const r of firsts) {
        assert.equal(cookiePair(r), `berth_web=${stickyToken(`web-${from(r)}`)}`);
      }
      // A cookie naming no instance: picked again and set anew.
      const stale = await request(port, "/", { headers: { cookie: "berth_web=0123456789abcdef" } });
      assert.equal(cookiePair(stale), `berth_web=${stickyToken(`web-${from(stale)}`)}`);
      // Its instance leaves: the client moves to the other and the cookie is set to it.
      ts.deregister(`web-${owner}`);
      await proxy.settled();
      const moved = await request(port, "/", { headers: { cookie: pair! } });
      assert.notEqual(from(moved), owner);
      assert.equal(cookiePair(moved), `berth_web=${stickyToken(`web-${from(moved)}`)}`);
    });
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("HttpProxy sticky cookie: berth.lb.cookie names it, berth.lb.cookie.ttl sets Max-Age", async () => {
  const { ts, a, b } = await twoBackends({
    "berth.lb": "sticky_cookie",
    "berth.lb.cookie": "srv",
    "berth.lb.cookie.ttl": "2h",
  });
  try {
    await withProxy(ts, {}, async (port) => {
      const r = await request(port, "/");
      const set = r.headers["set-cookie"]![0]!;
      assert.match(set, /^srv=[0-9a-f]{16}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=7200$/);
    });
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("HttpProxy sticky cookie over HTTPS (HTTP/1.1 and HTTP/2): Secure, and followed", async () => {
  const { ts, a, b } = await twoBackends({ "berth.lb": "sticky_cookie" });
  const caPem = testTls().caPem;
  try {
    await withH2Proxy(ts, {}, async (port) => {
      const first = await httpsRequest(port, "/", { host: "web.test", caPem });
      const set = first.headers["set-cookie"]![0]!;
      assert.match(set, /; Path=\/; HttpOnly; SameSite=Lax; Secure$/);
      const pair = set.split(";")[0]!;
      const owner = from(first);
      const other = owner === "a" ? "b" : "a";
      // Over HTTP/2 a cookie naming the other instance takes the request there.
      const client = h2Connect(port);
      try {
        const otherPair = `berth_web=${stickyToken(`web-${other}`)}`;
        for (const [cookie, want] of [[pair, owner], [otherPair, other]]) {
          const r = await h2Request(client, {
            ":path": "/h2",
            ":authority": "web.test",
            cookie: cookie!,
          });
          assert.equal(r.status, 200);
          assert.equal(r.body.toString().split(" ")[0], want);
          assert.equal(r.headers["set-cookie"], undefined);
        }
        const fresh = await h2Request(client, { ":path": "/h2", ":authority": "web.test" });
        assert.match(String(fresh.headers["set-cookie"]), /^berth_web=[0-9a-f]{16}; .*Secure$/);
      } finally {
        client.close();
      }
    });
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("HttpProxy with berth.http.timeout answers 504 after the service's own timeout", async () => {
  const silent = await startBackend("silent", () => {}); // never answers
  const ts = new TestStore();
  ts.register(spec({ id: "web-a", port: silent.port, meta: { "berth.http.timeout": "1s" } }));
  try {
    await withProxy(ts, { responseTimeoutMs: 5_000 }, async (port) => {
      const r = await request(port, "/");
      assert.equal(r.status, 504);
      assert.match(r.body, /instance web-a sent no response within 1000 ms/);
    });
  } finally {
    await silent.close();
  }
});

Deno.test("HttpProxy with berth.http.retries=0 answers 502 instead of trying another instance", async () => {
  const b = await startBackend("b");
  const dead = await unusedPort();
  for (const [retries, want] of [["0", 502], [null, 200]] as const) {
    const ts = new TestStore();
    const meta: Record<string, string> = retries === null ? {} : { "berth.http.retries": retries };
    ts.register(spec({ id: "web-a", port: dead, meta })); // round robin tries web-a first
    ts.register(spec({ id: "web-b", port: b.port, meta }));
    await withProxy(ts, {}, async (port) => {
      const r = await request(port, "/");
      assert.equal(r.status, want, `retries ${retries}: ${r.body}`);
    });
  }
  await b.close();
});

Deno.test("HttpProxy TCP route with berth.lb=hash sends one client IP to one instance", async () => {
  const echo = (name: string) =>
    new Promise<{ port: number; server: net.Server }>((resolve) => {
      const server = net.createServer((c) => c.end(name));
      server.listen(0, "127.0.0.1", () =>
        resolve({ port: (server.address() as net.AddressInfo).port, server }));
    });
  const a = await echo("a");
  const b = await echo("b");
  const tcpPort = await unusedPort();
  const ts = new TestStore();
  for (const [id, port] of [["tcp-a", a.port], ["tcp-b", b.port]] as const) {
    ts.register(spec({
      id,
      service: "tcp",
      port,
      httpHosts: [],
      tcpPort,
      meta: { "berth.lb": "hash" },
    }));
  }
  const read = () =>
    new Promise<string>((resolve, reject) => {
      const c = net.connect(tcpPort, "127.0.0.1");
      let got = "";
      c.on("data", (d) => got += d);
      c.on("end", () => resolve(got));
      c.on("error", reject);
    });
  try {
    await withProxy(ts, { tcpHost: "127.0.0.1" }, async () => {
      const got = [];
      for (let i = 0; i < 6; i++) got.push(await read());
      assert.equal(new Set(got).size, 1, `one client IP reached ${got}`);
    });
  } finally {
    a.server.close();
    b.server.close();
  }
});

Deno.test("HttpProxy with berth.http.max-conns=1 queue 2: one in flight, two wait, the rest 503 at once", async () => {
  const { ts, backend: a, held } = await heldWebA({
    "berth.http.max-conns": "1",
    "berth.http.max-conns.queue": "2",
  });
  try {
    await withProxy(ts, {}, async (port) => {
      const first = request(port, "/1");
      await waitFor("the first request reached the instance", () => held.length === 1);
      const queued = [request(port, "/2"), request(port, "/3")];
      // Each turned-away request is answered while the others still wait.
      const turnedAway = await Promise.all([1, 2, 3].map(() => request(port, "/x")));
      for (const r of turnedAway) {
        assert.equal(r.status, 503);
        assert.match(r.body, /instance web-a has its connections busy and its queue full/);
      }
      assert.equal(held.length, 1, "the queued requests wait for the one connection");
      // Each answer frees the connection for the next waiting request.
      for (let i = 1; i <= 3; i++) {
        await waitFor(`request ${i} at the instance`, () => held.length === i);
        held[i - 1]!.end(`done ${i}`);
      }
      const statuses = [await first, ...await Promise.all(queued)].map((r) => r.status);
      assert.deepEqual(statuses, [200, 200, 200]);
      assert.equal(a.connections, 1, "never more than one connection");
    });
  } finally {
    for (const r of held) r.end();
    await a.close();
  }
});

Deno.test("HttpProxy with berth.http.slow-start gives an instance that joins a tenth of its share at first", async () => {
  const a = await startBackend("a");
  const b = await startBackend("b");
  for (const [slow, lo, hi] of [["1h", 1, 3], [null, 10, 10]] as const) {
    const meta: Record<string, string> = slow === null ? {} : { "berth.http.slow-start": slow };
    const ts = new TestStore();
    ts.register(spec({ id: "web-a", port: a.port, meta }));
    await withProxy(ts, {}, async (port, proxy) => {
      ts.register(spec({ id: "web-b", port: b.port, meta })); // served from now on
      await proxy.settled();
      let toB = 0;
      for (let i = 0; i < 20; i++) if (from(await request(port, "/")) === "b") toB++;
      // 1 h ramp: weight ~0.1 against 1, about 2 of 20; without slow start 10 of 20.
      assert.ok(toB >= lo && toB <= hi, `slow-start ${slow}: b got ${toB} of 20`);
    });
  }
  await closeAll([a, b]);
});

Deno.test("HttpProxy sticky cookie: an Upgrade goes to the instance its cookie names", async () => {
  // Each backend switches protocols and says its name.
  const upgrading = (name: string) =>
    startBackend(name, undefined, (_req, socket) => {
      socket.end(
        `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n${name}`,
      );
    });
  const a = await upgrading("a");
  const b = await upgrading("b");
  const ts = new TestStore();
  for (const [id, port] of [["web-a", a.port], ["web-b", b.port]] as const) {
    ts.register(spec({ id, port, meta: { "berth.lb": "sticky_cookie" } }));
  }
  const upgrade = (port: number, cookie: string) =>
    new Promise<string>((resolve, reject) => {
      const c = net.connect(port, "127.0.0.1", () =>
        c.write(
          "GET /ws HTTP/1.1\r\nHost: web.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n" +
            `Cookie: ${cookie}\r\n\r\n`,
        ));
      let got = "";
      c.on("data", (d) => got += d);
      c.on("end", () => resolve(got.slice(got.indexOf("\r\n\r\n") + 4)));
      c.on("error", reject);
    });
  try {
    await withProxy(ts, {}, async (port) => {
      for (const name of ["a", "b", "b", "a"]) {
        const got = await upgrade(port, `berth_web=${stickyToken(`web-${name}`)}`);
        assert.equal(got, name);
      }
    });
  } finally {
    await closeAll([a, b]);
  }
});

Deno.test("HttpProxy sticky cookie comes after response-headers: removing Set-Cookie removes only the instance's", async () => {
  const a = await startBackend("a", (_req, res) => {
    res.setHeader("set-cookie", "app=1");
    res.end("a");
  });
  const ts = new TestStore();
  ts.register(spec({
    id: "web-a",
    port: a.port,
    meta: { "berth.lb": "sticky_cookie", "berth.http.response-headers.remove": "Set-Cookie" },
  }));
  try {
    await withProxy(ts, {}, async (port) => {
      const r = await request(port, "/");
      assert.equal(r.status, 200);
      assert.deepEqual(r.headers["set-cookie"], [
        `berth_web=${stickyToken("web-a")}; Path=/; HttpOnly; SameSite=Lax`,
      ]);
    });
  } finally {
    await a.close();
  }
});
