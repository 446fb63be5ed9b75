/**
 * End to end: `berth.http.compress` and `berth.http.ratelimit` on containers, through the real
 * proxy of a real `berth agent`, on the main thread (`--proxy-workers 1`) and on two worker
 * threads (`--proxy-workers 2`, where one client's connections land on both). curl is the
 * client: `--compressed` must get a gzip or Brotli body that decodes to the instance's, and a
 * burst over a tiny limit (1/m, burst 5) must get exactly the 429s it should, counted.
 */
import assert from "node:assert/strict";
import { removeContainers, requireDocker, runWeb, startAgent, uniq } from "./harness.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

/** An index.html over 1 KiB (compressed only above that), no quotes for the shell. */
const PAGE = Array.from({ length: 120 }, (_, i) => `line ${i} of the berth compression page`)
  .join(" ");

interface CurlAnswer {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** curl with `args`; the last answer's status, headers and body (each request on its own line). */
async function curl(args: string[]): Promise<{ out: string; err: string }> {
  const r = await new Deno.Command("curl", {
    args: ["-sS", ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const out = new TextDecoder().decode(r.stdout);
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, `curl ${args.join(" ")}: ${err}`);
  return { out, err };
}

/** One GET with Host `host` from client address `from`; headers from `-D`. */
async function get(
  port: number,
  host: string,
  extra: string[],
  from = "127.0.0.1",
): Promise<CurlAnswer> {
  const headerFile = await Deno.makeTempFile();
  try {
    const { out } = await curl([
      "--interface",
      from,
      "-D",
      headerFile,
      "-H",
      `Host: ${host}`,
      ...extra,
      `http://127.0.0.1:${port}/`,
    ]);
    const lines = (await Deno.readTextFile(headerFile)).split("\r\n");
    const status = Number(lines[0]!.split(" ")[1]);
    const headers = new Map<string, string>();
    for (const l of lines.slice(1)) {
      const i = l.indexOf(":");
      if (i > 0) headers.set(l.slice(0, i).toLowerCase(), l.slice(i + 1).trim());
    }
    return { status, headers, body: out };
  } finally {
    await Deno.remove(headerFile);
  }
}

/**
 * `n` GETs in one curl run, each on a new connection (`Connection: close`), from `from`: the
 * status codes and how many 429s carried a Retry-After.
 */
async function burst(port: number, host: string, n: number, from: string) {
  const url = `http://127.0.0.1:${port}/`;
  const { out } = await curl([
    "--interface",
    from,
    "-H",
    `Host: ${host}`,
    "-H",
    "Connection: close",
    "-w",
    "%{http_code} %header{retry-after}\\n",
    // `-o` applies to the URL after it: one each.
    ...Array.from({ length: n }, () => ["-o", "/dev/null", url]).flat(),
  ]);
  return out.trim().split("\n").map((l) => l.split(" "));
}

for (const workers of [1, 2]) {
  Deno.test({
    name:
      `e2e limits: --proxy-workers ${workers}: curl --compressed decodes gzip and Brotli, a burst over 1/m,burst=5 gets exactly 7 of 12 refused`,
    ...e2e,
    async fn() {
      await requireDocker();
      const svc = uniq("lim");
      const names: string[] = [];
      const agent = await startAgent({ args: ["--proxy-workers", String(workers)] });
      try {
        names.push(
          await runWeb({
            body: PAGE,
            env: { SERVICE_NAME: `${svc}-z` },
            labels: { "berth.http.host": `${svc}-z.test`, "berth.http.compress": "true" },
          }),
          await runWeb({
            body: "limited",
            env: { SERVICE_NAME: `${svc}-r` },
            labels: {
              "berth.http.host": `${svc}-r.test`,
              "berth.http.ratelimit": "1/m,burst=5",
            },
          }),
        );
        const zhost = `${svc}-z.test`;
        const rhost = `${svc}-r.test`;
        await waitFor("the compressed route", async () => {
          const r = await get(agent.proxyPort, zhost, []);
          return r.status === 200;
        });

        // Compression: Brotli by default (curl offers both), gzip when asked; both decode.
        const plain = await get(agent.proxyPort, zhost, []);
        assert.equal(plain.body.trim(), PAGE);
        assert.equal(plain.headers.get("content-encoding"), undefined);
        assert.equal(plain.headers.get("vary"), "Accept-Encoding");
        for (
          const [offer, coding] of [
            [[], "br"],
            [["-H", "Accept-Encoding: gzip"], "gzip"],
            [["-H", "Accept-Encoding: gzip;q=1, br;q=0.5"], "gzip"],
          ] as const
        ) {
          const z = await get(agent.proxyPort, zhost, ["--compressed", ...offer]);
          assert.equal(z.status, 200);
          assert.equal(z.headers.get("content-encoding"), coding);
          assert.equal(z.headers.get("content-length"), undefined);
          assert.equal(z.headers.get("transfer-encoding"), "chunked");
          assert.equal(z.body.trim(), PAGE, `${coding} body decodes to the instance's`);
        }

        // Rate limit: probe from another client address until both workers have the route
        // (its own bucket runs dry: 429s count as routed), then 12 requests from one client
        // on 12 connections: exactly 5 pass, 7 are refused with a Retry-After.
        await waitFor("the limited route on every worker", async () => {
          const codes = await burst(agent.proxyPort, rhost, 10, "127.0.0.9");
          return codes.every(([code]) => code === "200" || code === "429");
        });
        const codes = await burst(agent.proxyPort, rhost, 12, "127.0.0.5");
        const count = (c: string) => codes.filter(([code]) => code === c).length;
        assert.equal(count("200"), 5, JSON.stringify(codes));
        assert.equal(count("429"), 7, JSON.stringify(codes));
        for (const [code, retry] of codes) {
          if (code === "429") assert.ok(Number(retry) >= 1 && Number(retry) <= 60, retry);
        }
        // Another client has its own bucket.
        const other = await burst(agent.proxyPort, rhost, 1, "127.0.0.6");
        assert.deepEqual(other.map(([c]) => c), ["200"]);
        assert.doesNotMatch(agent.log(), /proxy: worker \d stopped/);
      } finally {
        await removeContainers(names);
        await agent.stop();
      }
    },
  });
}
