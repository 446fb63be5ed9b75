/**
 * End to end with a real `berth agent`: `--access-log FILE` writes exactly one line per request
 * sent with curl (forwarded ones and the proxy's own 404s), on the main thread and on two proxy
 * workers appending to one file; after the file is moved away, SIGUSR1 makes a new file that
 * gets the later lines; under wrk's concurrent connections on two proxy workers, one line per
 * request wrk counted. Run under `flock /tmp/berth-e2e.lock`.
 *
 * @module
 */
import assert from "node:assert/strict";
import http from "node:http";
import type net from "node:net";
import { type AgentProc, signalAgent, startAgent, uniq } from "./harness.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

/** A backend answering `ok PATH` on loopback. */
async function backend(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => res.end(`ok ${req.url}`));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * A backend that answers `/warmup` and its first `answered` other requests, then holds every
 * later one unanswered (until close): a load generator stopped by its duration has exactly one
 * request per connection in flight, held here, and every response before them delivered.
 */
async function holdingBackend(answered: number) {
  let seen = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    if (req.url === "/warmup" || ++seen <= answered) req.on("end", () => res.end("ok"));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as net.AddressInfo).port,
    /** Requests other than /warmup received so far. */
    seen: () => seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Whether wrk is installed (.ci/run installs it). */
function hasWrk(): boolean {
  try {
    return new Deno.Command("wrk", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().code !== 127;
  } catch {
    return false;
  }
}

/**
 * Registers `svc` on `host` at the backend through the API and waits until it is routed.
 * Resolves with the requests that took (each one a line of the access log).
 */
async function register(
  a: AgentProc,
  svc: string,
  port: number,
  meta: Record<string, string> = {},
): Promise<number> {
  const r = await fetch(`${a.httpUrl}/v1/agent/service/register`, {
    method: "PUT",
    body: JSON.stringify({
      Name: svc,
      ID: `${svc}-1`,
      Address: "127.0.0.1",
      Port: port,
      Meta: { "berth.http.host": `${svc}.test`, ...meta },
    }),
  });
  assert.equal(r.status, 200, await r.text());
  let sent = 0;
  await waitFor(`${svc} routed`, async () => {
    sent++;
    return (await curl(a, `${svc}.test`, "/warmup")) === 200;
  });
  return sent;
}

/** One request with curl (a new connection each): its status. */
async function curl(a: AgentProc, host: string, path: string): Promise<number> {
  const out = await new Deno.Command("curl", {
    args: [
      ...["-sS", "-o", "/dev/null", "-m", "10", "-w", "%{http_code}"],
      ...["-H", `Host: ${host}`, `http://127.0.0.1:${a.proxyPort}${path}`],
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return Number(new TextDecoder().decode(out.stdout));
}

/** The lines of `path` (none when it does not exist). */
function lines(path: string): string[] {
  try {
    return Deno.readTextFileSync(path).split("\n").filter((l) => l !== "");
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/** Waits until `path` holds `n` lines (the writer batches), then checks no more arrive. */
async function exactly(path: string, n: number): Promise<string[]> {
  await waitFor(`${n} lines in ${path}`, () => lines(path).length >= n);
  await new Promise((r) => setTimeout(r, 300));
  const got = lines(path);
  assert.equal(got.length, n, `exactly ${n} lines in ${path}`);
  return got;
}

/** Sends `ok` requests to `svc` and `missing` to a host with no route, interleaved. */
async function send(a: AgentProc, svc: string, ok: number, missing: number, tag: string) {
  const statuses: number[] = [];
  for (let i = 0; i < Math.max(ok, missing); i++) {
    if (i < ok) statuses.push(await curl(a, `${svc}.test`, `/${tag}/${i}`));
    if (i < missing) statuses.push(await curl(a, "nowhere.test", `/${tag}/${i}`));
  }
  assert.equal(statuses.filter((s) => s === 200).length, ok);
  assert.equal(statuses.filter((s) => s === 404).length, missing);
}

for (const workers of [1, 2]) {
  Deno.test({
    name: `e2e access log: --proxy-workers ${workers}: one JSON line per request, ` +
      "a new file after SIGUSR1",
    ...e2e,
    async fn() {
      const b = await backend();
      const dir = await Deno.makeTempDir({ prefix: "berth-access-" });
      await Deno.mkdir(`${dir}/sub`);
      const file = `${dir}/sub/access.log`;
      const svc = uniq("al");
      const agent = await startAgent({
        docker: false,
        args: ["--proxy-workers", String(workers), "--access-log", file],
      });
      try {
        const warmups = await register(agent, svc, b.port); // logged too
        await exactly(file, warmups);
        await send(agent, svc, 20, 10, "a");
        const first = (await exactly(file, warmups + 30)).slice(warmups);
        const records = first.map((l) => JSON.parse(l));
        assert.equal(records.filter((r) => r.status === 200).length, 20);
        assert.equal(records.filter((r) => r.status === 404).length, 10);
        for (const r of records) {
          assert.match(r.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
          assert.equal(r.member, agent.node);
          assert.equal(r.client, "127.0.0.1");
          assert.equal(r.method, "GET");
          assert.equal(r.proto, "HTTP/1.1");
          assert.match(r.request_id, /^[0-9a-f]{12}-[0-9a-z]+$/);
          assert.equal(typeof r.duration_ms, "number");
          if (r.status === 200) {
            assert.equal(r.service, svc);
            assert.equal(r.instance, `${svc}-1`);
            assert.equal(r.host, `${svc}.test`);
            assert.equal(r.attempts, 1);
            assert.equal(r.bytes_out, `ok ${r.path}`.length);
          } else {
            assert.equal(r.service, null);
            assert.equal(r.host, "nowhere.test");
          }
        }
        assert.equal(new Set(records.map((r) => r.request_id)).size, 30, "ids unique");

        // Rotation: move the file away, SIGUSR1, later lines go to a new file.
        await Deno.rename(file, `${file}.1`);
        signalAgent(agent, "SIGUSR1");
        await waitFor("the reopen logged", () => agent.log().includes("SIGUSR1: access log"));
        assert.match(agent.log(), new RegExp(`SIGUSR1: access log ${file} reopened`));
        await send(agent, svc, 5, 2, "b");
        const later = await exactly(file, 7);
        assert.deepEqual(
          later.map((l) => JSON.parse(l).path.split("/")[1]),
          Array(7).fill("b"),
        );
        assert.equal(lines(`${file}.1`).length, warmups + 30, "the old file got no later line");
        const metrics = await (await fetch(`${agent.httpUrl}/metrics`)).text();
        assert.match(metrics, /^berth_access_log_dropped_total 0$/m);

        // A reopen that fails (the directory went away) says so, naming why, never "reopened".
        await Deno.rename(`${dir}/sub`, `${dir}/gone`);
        signalAgent(agent, "SIGUSR1");
        const reopens = () =>
          agent.log().split("\n").filter((l) => l.includes("SIGUSR1: access log"));
        await waitFor("the failed reopen logged", () => reopens().length === 2);
        const failed = reopens()[1]!;
        assert.doesNotMatch(failed, / reopened$/);
        assert.match(
          failed,
          workers === 1
            ? new RegExp(`SIGUSR1: access log ${file}: No such file or directory`)
            : new RegExp(
              `SIGUSR1: access log ${file}: reopened by 0 of 2 proxy threads; ` +
                `workers 0, 1: No such file or directory`,
            ),
        );
        await send(agent, svc, 3, 0, "c");
        await waitFor(
          "lines written to the old file",
          () => lines(`${dir}/gone/access.log`).length === 10,
        );
      } finally {
        await agent.stop();
        await b.close();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "e2e access log: --access-log-format combined writes Apache's combined lines",
  ...e2e,
  async fn() {
    const b = await backend();
    const dir = await Deno.makeTempDir({ prefix: "berth-access-" });
    const file = `${dir}/access.log`;
    const svc = uniq("alc");
    const agent = await startAgent({
      docker: false,
      args: ["--proxy-workers", "1", "--access-log", file, "--access-log-format", "combined"],
    });
    try {
      const before = await register(agent, svc, b.port);
      await exactly(file, before);
      assert.equal(await curl(agent, `${svc}.test`, "/x?y=1"), 200);
      const [line] = (await exactly(file, before + 1)).slice(before);
      assert.match(
        line!,
        /^127\.0\.0\.1 - - \[\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET \/x\?y=1 HTTP\/1\.1" 200 \d+ "-" "curl\/[^"]+"$/,
      );
    } finally {
      await agent.stop();
      await b.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const WRK_CONNECTIONS = 4;
/** Requests the backend answers under wrk: far fewer than wrk sends in its 2 s on any machine. */
const WRK_ANSWERED = 300;

Deno.test({
  name: "e2e access log: under wrk on two proxy workers, one JSON line per request wrk counted",
  ...e2e,
  ignore: !hasWrk() && (console.error("e2e access log under wrk: skipped, no wrk installed"), true),
  async fn() {
    const b = await holdingBackend(WRK_ANSWERED);
    const dir = await Deno.makeTempDir({ prefix: "berth-access-" });
    const file = `${dir}/access.log`;
    const svc = uniq("alw");
    const agent = await startAgent({
      docker: false,
      args: ["--proxy-workers", "2", "--access-log", file],
    });
    try {
      // No retry: a held request cut at the end is logged once (499 or 502), never sent again.
      const warmups = await register(agent, svc, b.port, { "berth.http.retries": "0" });
      await exactly(file, warmups);
      const out = await new Deno.Command("wrk", {
        args: [
          ...["-t1", `-c${WRK_CONNECTIONS}`, "-d2s", "--timeout", "30s"],
          ...["-H", `Host: ${svc}.test`, `http://127.0.0.1:${agent.proxyPort}/w`],
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const report = new TextDecoder().decode(out.stdout);
      assert.ok(out.success, report + new TextDecoder().decode(out.stderr));
      const counted = Number(/^\s*(\d+) requests in /m.exec(report)?.[1] ?? NaN);
      assert.doesNotMatch(report, /Socket errors|Non-2xx/, report);
      // wrk reached the backend's limit: each connection's last request is held, unanswered.
      assert.equal(b.seen(), WRK_ANSWERED + WRK_CONNECTIONS, report);
      assert.equal(counted, WRK_ANSWERED, report);
      await b.close(); // the held requests end (the client is gone, or the instance cut them)
      const records = (await exactly(file, warmups + counted + WRK_CONNECTIONS))
        .slice(warmups).map((l) => JSON.parse(l));
      assert.equal(records.filter((r) => r.status === 200).length, counted, "200s = wrk's count");
      const cut = records.filter((r) => r.status !== 200).map((r) => r.status);
      assert.equal(cut.length, WRK_CONNECTIONS);
      for (const status of cut) assert.ok(status === 499 || status === 502, `cut: ${status}`);
      for (const r of records) {
        assert.equal(r.service, svc);
        assert.equal(r.path, "/w");
        assert.equal(r.attempts, 1);
      }
      assert.equal(new Set(records.map((r) => r.request_id)).size, records.length, "ids unique");
      const metrics = await (await fetch(`${agent.httpUrl}/metrics`)).text();
      assert.match(metrics, /^berth_access_log_dropped_total 0$/m);
    } finally {
      await agent.stop();
      await b.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
