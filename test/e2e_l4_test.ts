/**
 * End to end with a real berth process (proxy on two worker threads): the PROXY protocol out
 * (`berth.proxy-protocol=v2` on a TCP route and an HTTP route, to test servers that read the
 * header as an instance configured for it does) and in (`--proxy-protocol-from`: a "balancer"
 * connecting from 127.0.0.9 declares the client address, which the instances and
 * X-Forwarded-For then carry); and a UDP route (`berth.udp.port`) to busybox containers
 * answering UDP; a container publishing one port over TCP and UDP gets HTTP on its TCP port only,
 * and a UDP-only one no edge-domain route. Run under `flock /tmp/berth-e2e.lock`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http from "node:http";
import net from "node:net";
import {
  docker,
  freePort,
  removeContainers,
  requireDocker,
  runWeb,
  startAgent,
  stopAll,
  TEST_IMAGE,
  uniq,
} from "./harness.ts";
import { waitFor } from "./wait.ts";
import { buildProxyHeader, parseProxyHeader } from "../src/proxy/proxy_protocol.ts";
import { buildUdpEcho, udpClient } from "./udp_echo.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

/** Where the trusted "balancer" connects from. */
const BALANCER = "127.0.0.9";

/**
 * A test instance that reads the PROXY header every connection starts with and answers with the
 * source address it names: each TCP chunk with `ADDRESS:chunk`, each HTTP request head with a
 * 200 whose body is the address. Every header's source is recorded.
 */
async function proxiedInstance(mode: "tcp" | "http") {
  const sources: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    let buf = Buffer.alloc(0);
    let who: string | null = null;
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (who === null) {
        let r;
        try {
          r = parseProxyHeader(buf);
        } catch {
          sources.push("no header");
          s.destroy();
          return;
        }
        if (r === "more") return;
        who = r.header.source?.address ?? "local";
        sources.push(who);
        buf = buf.subarray(r.length);
      }
      if (mode === "tcp") {
        if (buf.length > 0) s.write(`${who}:${buf}`);
        buf = Buffer.alloc(0);
        return;
      }
      let end: number;
      while ((end = buf.indexOf("\r\n\r\n")) >= 0) {
        buf = buf.subarray(end + 4);
        s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${who.length}\r\n\r\n${who}`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    sources,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * Connects to 127.0.0.1:`port` (from `from`, default the system's choice), writes `wire` and
 * resolves with what came back once `done(received)` holds (or the connection closed).
 */
function exchange(
  port: number,
  wire: Uint8Array | string,
  done: (s: string) => boolean,
  from?: string,
): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect({ host: "127.0.0.1", port, ...(from ? { localAddress: from } : {}) });
    let got = "";
    const finish = () => {
      clearTimeout(timer);
      c.destroy();
      resolve(got);
    };
    const timer = setTimeout(finish, 10_000);
    c.on("connect", () => c.write(wire));
    c.on("data", (d) => {
      got += d.toString("latin1");
      if (done(got)) finish();
    });
    c.on("error", () => {});
    c.on("close", finish);
  });
}

/** A PROXY v1 header as a balancer would send it for `client`. */
const declared = (client: string, proxyPort: number) =>
  Buffer.from(buildProxyHeader(1, { address: client, port: 50123 }, {
    address: "127.0.0.1",
    port: proxyPort,
  }));

async function curl(args: string[]): Promise<string> {
  const out = await new Deno.Command("curl", { args: ["-sS", "-m", "10", ...args] }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name:
    "e2e l4: berth.proxy-protocol=v2 on TCP and HTTP routes tells instances the client's address; --proxy-protocol-from takes a balancer's declared one",
  ...e2e,
  async fn() {
    const tcpInst = await proxiedInstance("tcp");
    const httpInst = await proxiedInstance("http");
    const xff = http.createServer((req, res) => res.end(String(req.headers["x-forwarded-for"])));
    await new Promise<void>((r) => xff.listen(0, "127.0.0.1", r));
    const tcpPort = await freePort();
    const agent = await startAgent({
      docker: false,
      args: ["--proxy-protocol-from", `${BALANCER}/32`, "--proxy-workers", "2"],
    });
    try {
      const register = async (body: unknown) => {
        const r = await fetch(`${agent.httpUrl}/v1/agent/service/register`, {
          method: "PUT",
          body: JSON.stringify(body),
        });
        assert.equal(r.status, 200, await r.text());
      };
      await register({
        Name: "pptcp",
        Address: "127.0.0.1",
        Port: tcpInst.port,
        Meta: { "berth.tcp.port": String(tcpPort), "berth.proxy-protocol": "v2" },
      });
      await register({
        Name: "pphttp",
        Address: "127.0.0.1",
        Port: httpInst.port,
        Meta: { "berth.http.host": "pp.test", "berth.proxy-protocol": "v2" },
      });
      await register({
        Name: "xff",
        Address: "127.0.0.1",
        Port: (xff.address() as net.AddressInfo).port,
        Meta: { "berth.http.host": "xff.test" },
      });
      const base = `http://127.0.0.1:${agent.proxyPort}/`;
      await waitFor("routes served", async () => {
        const r = await exchange(
          agent.proxyPort,
          "GET / HTTP/1.1\r\nhost: xff.test\r\n\r\n",
          (s) => s.endsWith("127.0.0.1"),
        );
        return r.startsWith("HTTP/1.1 200 ");
      }, { timeoutMs: 30_000 });
      await waitFor("TCP route listening", async () => {
        return (await exchange(tcpPort, "ping", (s) => s.endsWith("ping"))).endsWith(":ping");
      }, { timeoutMs: 30_000 });

      // Direct clients: the instance reads their own address from the header.
      assert.equal(await exchange(tcpPort, "hello", (s) => s.endsWith("hello")), "127.0.0.1:hello");
      const direct = await curl(["-H", "host: pp.test", base]);
      assert.equal(direct, "127.0.0.1");

      // Through the trusted balancer: the address it declared, on both routes.
      const viaTcp = await exchange(
        tcpPort,
        Buffer.concat([declared("203.0.113.7", tcpPort), Buffer.from("hi")]),
        (s) => s.endsWith("hi"),
        BALANCER,
      );
      assert.equal(viaTcp, "203.0.113.7:hi");
      const get = (host: string) => `GET / HTTP/1.1\r\nhost: ${host}\r\n\r\n`;
      for (const [client, host] of [["198.51.100.7", "pp.test"], ["198.51.100.8", "pp.test"]]) {
        const r = await exchange(
          agent.proxyPort,
          Buffer.concat([declared(client!, agent.proxyPort), Buffer.from(get(host!))]),
          (s) => s.endsWith(`\r\n\r\n${client}`),
          BALANCER,
        );
        assert.ok(r.startsWith("HTTP/1.1 200 ") && r.endsWith(`\r\n\r\n${client}`), r);
      }
      // X-Forwarded-For carries the declared address (the client's own list kept before it).
      const x = await exchange(
        agent.proxyPort,
        Buffer.concat([
          declared("198.51.100.9", agent.proxyPort),
          Buffer.from("GET / HTTP/1.1\r\nhost: xff.test\r\nx-forwarded-for: 10.1.1.1\r\n\r\n"),
        ]),
        (s) => s.endsWith("198.51.100.9"),
        BALANCER,
      );
      assert.ok(x.endsWith("\r\n\r\n10.1.1.1, 198.51.100.9"), x);
      // From the balancer without a header: closed unanswered. From elsewhere, a header is data.
      assert.equal(await exchange(agent.proxyPort, get("xff.test"), () => false, BALANCER), "");
      const spoof = await exchange(
        agent.proxyPort,
        Buffer.concat([declared("6.6.6.6", agent.proxyPort), Buffer.from(get("xff.test"))]),
        (s) => s.includes("\r\n\r\n"),
      );
      assert.match(spoof, /^HTTP\/1\.1 400 /);

      assert.ok(!tcpInst.sources.includes("no header"), tcpInst.sources.join(","));
      assert.ok(tcpInst.sources.includes("203.0.113.7"));
      // One private connection per client address, never shared between them.
      for (const a of ["127.0.0.1", "198.51.100.7", "198.51.100.8"]) {
        assert.ok(httpInst.sources.includes(a), `${a} in ${httpInst.sources.join(",")}`);
      }
      assert.ok(!httpInst.sources.includes("no header"));
    } finally {
      await stopAll([agent]);
      await tcpInst.close();
      await httpInst.close();
      await new Promise<void>((r) => xff.close(() => r()));
    }
  },
});

Deno.test({
  name:
    "e2e l4: berth.udp.port balances a busybox container's UDP echo per client flow; a stopped container's flows move",
  ...e2e,
  async fn() {
    await requireDocker();
    const dir = await buildUdpEcho();
    const svc = uniq("udp");
    const udpPort = await freePort();
    const names: string[] = [];
    const agent = await startAgent({ args: ["--proxy-workers", "2"] });
    let clients: Awaited<ReturnType<typeof udpClient>>[] = [];
    try {
      for (const body of ["one", "two"]) {
        const name = `berth-e2e-${svc}-${body}`;
        names.push(name);
        await docker(
          ...["run", "-d", "--name", name, "-l", "berth-e2e=1", "-e", `SERVICE_NAME=${svc}`],
          ...["-l", `berth.udp.port=${udpPort}`, "-l", "berth.port=9000/udp"],
          ...["-p", "127.0.0.1::9000/udp", "-v", `${dir}/udp_echo:/udp_echo:ro`],
          ...[TEST_IMAGE, "/udp_echo", body],
        );
      }
      // Both registered and passing before the first datagram: flows made before the second
      // container is served stay on the first (as they should).
      await waitFor("both containers registered and passing", async () => {
        const r = await fetch(`${agent.httpUrl}/v1/berth/instances?service=${svc}`);
        const list = await r.json() as { status: string }[];
        return list.length === 2 && list.every((i) => i.status === "passing");
      }, { timeoutMs: 60_000 });
      // Each client flow stays on one container; four flows reach both.
      const seen = new Map<number, string>();
      await waitFor("both containers answer through the UDP route", async () => {
        // Fresh clients each round: a flow made while one container was served stays on it.
        for (const c of clients) c.close();
        clients = await Promise.all([udpClient(), udpClient(), udpClient(), udpClient()]);
        seen.clear();
        for (const [i, c] of clients.entries()) {
          const a = await c.ask(udpPort, `ping${i}`, 1_000);
          if (a !== "") seen.set(i, a.split(":")[0]!);
        }
        return seen.size === clients.length && new Set(seen.values()).size === 2;
      }, { timeoutMs: 60_000 }).catch(async (e) => {
        const get = async (path: string) => await (await fetch(`${agent.httpUrl}${path}`)).text();
        throw new Error(
          `${e.message}; answers ${JSON.stringify([...seen])}\ninstances: ${await get(
            "/v1/berth/instances",
          )}\nroutes: ${await get("/v1/berth/routes")}\nlog:\n${agent.log().slice(-3000)}`,
        );
      });
      for (const [i, c] of clients.entries()) {
        for (let k = 0; k < 3; k++) {
          assert.equal(await c.ask(udpPort, `m${k}`), `${seen.get(i)}:m${k}`, `client ${i}`);
        }
      }
      const routes = await (await fetch(`${agent.httpUrl}/v1/berth/routes`)).json();
      assert.deepEqual(
        routes.udp.map((r: { port: number; service: string; state: string }) => [
          r.port,
          r.service,
          r.state,
        ]),
        [[udpPort, svc, "listening"]],
      );
      // Stop "one": once its instance is no longer served, its flows move to "two".
      await docker("stop", "-t", "1", names[0]!);
      const moved = clients.find((_, i) => seen.get(i) === "one")!;
      await waitFor("a flow of the stopped container answered by the other", async () => {
        return (await moved.ask(udpPort, "again", 1_000)) === "two:again";
      }, { timeoutMs: 30_000 });
    } finally {
      for (const c of clients) c.close();
      await removeContainers(names);
      await stopAll([agent]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/** One request with curl (a new connection each): `status body`. */
async function curlStatus(port: number, host: string): Promise<string> {
  const out = await curl([
    "-w",
    "\n%{http_code}",
    "-H",
    `Host: ${host}`,
    `http://127.0.0.1:${port}/`,
  ]);
  const at = out.lastIndexOf("\n");
  return `${out.slice(at + 1)} ${out.slice(0, at).trim()}`;
}

Deno.test({
  name:
    "e2e l4: -p ::80 -p ::80/udp sends HTTP to the TCP port only (200s, one attempt, no connect error); a UDP-only service has no edge route",
  ...e2e,
  async fn() {
    await requireDocker();
    const svc = uniq("mix");
    const udpOnly = uniq("udpo");
    const dir = await Deno.makeTempDir({ prefix: "berth-l4-" });
    const log = `${dir}/access.log`;
    const names: string[] = [];
    const agent = await startAgent({
      args: ["--proxy-workers", "2", "--edge-domain", "edge.test", "--access-log", log],
    });
    try {
      // No retry: a request sent to the UDP instance's port would be a 502.
      names.push(
        await runWeb({
          body: "mix",
          labels: { "berth.service": svc, "berth.http.retries": "0" },
          args: ["-p", "127.0.0.1::80/udp"],
        }),
      );
      const only = `berth-e2e-${udpOnly}`;
      names.push(only);
      await docker(
        ...["run", "-d", "--name", only, "-l", "berth-e2e=1", "-l", `berth.service=${udpOnly}`],
        ...["-l", `berth.udp.port=${await freePort()}`, "-p", "127.0.0.1::53/udp"],
        ...[TEST_IMAGE, "sleep", "600"],
      );
      const service = `${svc}-80`; // two ports (80/tcp, 80/udp), as Registrator names them
      await waitFor("both instances and the UDP-only one registered and passing", async () => {
        const r = await fetch(`${agent.httpUrl}/v1/berth/instances`);
        const list = await r.json() as { id: string; service: string; status: string }[];
        const mine = list.filter((i) => i.service === service || i.service === udpOnly);
        return mine.length === 3 && mine.every((i) => i.status === "passing");
      }, { timeoutMs: 60_000 });
      await waitFor(
        "the edge route serves",
        async () => (await curlStatus(agent.proxyPort, `${service}.edge.test`)) === "200 mix",
      );
      const lines = () =>
        Deno.readTextFileSync(log).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l))
          .filter((r) => r.service === service);
      const before = lines().length;
      for (let i = 0; i < 8; i++) {
        assert.equal(
          await curlStatus(agent.proxyPort, `${service}.edge.test`),
          "200 mix",
          `request ${i}`,
        );
      }
      await waitFor("8 more lines", () => lines().length >= before + 8);
      for (const r of lines()) {
        assert.match(r.instance, /:80$/, JSON.stringify(r));
        assert.equal(r.attempts, 1);
      }
      const metrics = await (await fetch(`${agent.httpUrl}/metrics`)).text();
      assert.doesNotMatch(
        metrics,
        new RegExp(`^berth_proxy_connect_errors_total\\{service="${service}"\\} [1-9]`, "m"),
      );
      assert.match(await curlStatus(agent.proxyPort, `${udpOnly}.edge.test`), /^404 /);
    } finally {
      await removeContainers(names);
      await stopAll([agent]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
