import assert from "node:assert/strict";
import { nginxProxyConfig } from "./_http_anchors.ts";
import {
  authorization,
  berthArgs,
  berthMeta,
  BODY,
  costTable,
  countLines,
  eachPairs,
  featureBackendConfig,
  featurePairs,
  middlewaresText,
  nginxExtra,
  ratioText,
  type Support,
  tablesOf,
  wrkRequests,
} from "./_http_features.ts";
import type { Figure, Outcome } from "./_compare.ts";

const base = { dir: "/tmp/x", host: "127.0.0.1", port: 8080, backendPort: 9090, workers: 2 };
const all = { middlewares: ["auth", "headers", "compress"] as const };

Deno.test("berthArgs() turns the JSON access log on only for a variant with a log file", () => {
  assert.deepEqual(berthArgs({ middlewares: [] }), []);
  assert.deepEqual(berthArgs({ accessLog: "/tmp/a.log", middlewares: [] }), [
    "--access-log",
    "/tmp/a.log",
    "--access-log-format",
    "json",
  ]);
});

Deno.test("berthMeta() sets the route keys of each middleware asked for, none for a baseline", () => {
  assert.deepEqual(berthMeta({ middlewares: [] }, "$2b$05$h"), {});
  assert.deepEqual(berthMeta(all, "$2b$05$h"), {
    "berth.http.auth.basic": "bench:$2b$05$h",
    "berth.http.request-header.X-Bench": "1",
    "berth.http.response-header.X-Served-By": "bench",
    "berth.http.response-headers.remove": "X-Backend-Secret",
    "berth.http.compress": "true",
  });
  assert.deepEqual(Object.keys(berthMeta({ middlewares: ["compress"] }, "h")), [
    "berth.http.compress",
  ]);
});

Deno.test("nginxExtra() gives a baseline no directive and the full variant each equivalent", () => {
  const none = nginxExtra({ middlewares: [] }, "/tmp/htpasswd");
  assert.deepEqual(none, { http: "", location: "" });
  assert.equal(nginxProxyConfig({ ...base, extra: none }), nginxProxyConfig(base));
  const conf = nginxProxyConfig({
    ...base,
    extra: nginxExtra({ ...all, accessLog: "/tmp/n.log" }, "/tmp/htpasswd"),
  });
  assert.match(conf, /^ {2}log_format bench_json escape=json '\{"time":"\$time_iso8601",.*\}';$/m);
  assert.match(conf, /^ {6}access_log \/tmp\/n\.log bench_json buffer=64k flush=1s;$/m);
  assert.match(conf, /^ {6}auth_basic_user_file \/tmp\/htpasswd;$/m);
  assert.match(conf, /^ {6}proxy_set_header X-Bench 1;$/m);
  assert.match(conf, /^ {6}add_header X-Served-By bench;$/m);
  assert.match(conf, /^ {6}proxy_hide_header X-Backend-Secret;$/m);
  assert.match(conf, /^ {6}gzip_min_length 1024;$/m);
  // The http-level access_log stays off: only the proxied location logs.
  assert.match(conf, /^ {2}access_log off;$/m);
  // Directives land inside the location, before its closing brace.
  assert.ok(conf.indexOf("gzip_vary on;") < conf.lastIndexOf("    }"));
});

Deno.test("nginx's JSON log_format writes a line that parses as JSON once nginx fills it in", () => {
  const line = /log_format bench_json escape=json '(.*)';/.exec(
    nginxExtra({ accessLog: "/tmp/n.log", middlewares: [] }, "").http,
  )![1]!;
  const filled = line.replaceAll(
    /\$[a-z_0-9]+/g,
    (v) => ["$status", "$request_length", "$bytes_sent", "$request_time"].includes(v) ? "1" : "x",
  );
  assert.equal((JSON.parse(filled) as { status: number }).status, 1);
});

Deno.test("featureBackendConfig() serves BODY as text/plain with the header to remove and the echo", () => {
  const conf = featureBackendConfig({ dir: "/tmp/x", host: "127.0.0.1", port: 9090 });
  assert.ok(BODY.length >= 1024 && !/["$\\]/.test(BODY));
  assert.match(conf, /default_type text\/plain;/);
  assert.match(conf, /add_header X-Backend-Secret backend;/);
  assert.match(conf, /add_header X-Seen-Bench \$http_x_bench;/);
  assert.ok(conf.includes(`return 200 "${BODY}";`));
});

Deno.test("authorization() is basic auth of the bench user", () => {
  assert.equal(atob(authorization().replace(/^Basic /, "")), "bench:bench-password");
});

Deno.test("middlewaresText() names each middleware and says compression is not applied", () => {
  assert.equal(
    middlewaresText(["auth", "headers", "compress"]),
    "auth + headers + compress (not applied)",
  );
  assert.equal(middlewaresText(["auth"]), "auth");
});

function figure(rate: number, p99Ms: number): Outcome {
  const f: Figure = {
    rate,
    p50Ms: 1,
    p99Ms,
    errors: 0,
    clientCpuPct: 10,
    serverCores: 1,
    backendCores: 0.1,
    otherCores: 0,
    runs: 2,
  };
  return { figure: f };
}

Deno.test("ratioText() divides rate and p99, a dash when either side has no figure", () => {
  const o = new Map<string, Outcome>([
    ["a", figure(9000, 2.2)],
    ["b", figure(10000, 2)],
    ["s", { failure: "skipped: no --access-log" }],
  ]);
  assert.equal(ratioText(o, "a", "b", "req/s"), "0.90× req/s, p99 1.10×");
  assert.equal(ratioText(o, "s", "b", "req/s"), "—");
  assert.equal(ratioText(o, "a", "missing", "req/s"), "—");
});

Deno.test("costTable() gives each side's variant over its own baseline", () => {
  const o = new Map<string, Outcome>([
    ["berth", figure(10000, 2)],
    ["berth-log", figure(8000, 3)],
    ["nginx", figure(20000, 1)],
    ["nginx-log", figure(19000, 1)],
  ]);
  assert.deepEqual(
    costTable(
      [{
        label: "access log",
        berth: { variant: "berth-log", base: "berth" },
        anchor: { variant: "nginx-log", base: "nginx" },
      }],
      o,
      "req/s",
    ),
    [
      "| cost (variant / baseline) | berth | nginx |",
      "|---|---|---|",
      "| access log | 0.80× req/s, p99 1.50× | 0.95× req/s, p99 1.00× |",
    ],
  );
});

Deno.test("wrkRequests() reads a wrk report's request count", () => {
  assert.equal(wrkRequests("  Latency ...\n  10116 requests in 2.00s, 1.60MB read\n"), 10116);
  assert.throws(() => wrkRequests("Requests/sec: 1\n"), /no request count/);
});

Deno.test("countLines() counts the LF-terminated lines of a file beyond one read's chunk", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, `${"x".repeat(100)}\n`.repeat(1000) + "tail");
    assert.equal(await countLines(path), 1000);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("tablesOf() compares each pair's sides and each side with its baseline", () => {
  const v = { middlewares: [] };
  const { rows, costs } = tablesOf([
    { key: "base", label: "baseline", variant: v, htpasswd: "" },
    { key: "mw", label: "auth", variant: v, htpasswd: "/b" },
    { key: "mw-ssha", label: "auth, {SSHA}", variant: v, htpasswd: "/s", berthOf: "mw" },
  ]);
  assert.deepEqual(rows.map((r) => [r.berth, r.anchor]), [
    ["berth-base", "nginx-base"],
    ["berth-mw", "nginx-mw"],
    ["berth-mw", "nginx-mw-ssha"],
  ]);
  assert.deepEqual(costs, [
    {
      label: "auth",
      berth: { variant: "berth-mw", base: "berth-base" },
      anchor: { variant: "nginx-mw", base: "nginx-base" },
    },
    {
      label: "auth, {SSHA}",
      berth: { variant: "berth-mw", base: "berth-base" },
      anchor: { variant: "nginx-mw-ssha", base: "nginx-base" },
    },
  ]);
  assert.deepEqual(tablesOf([]), { rows: [], costs: [] });
});

const files = { bcrypt: "/d/htpasswd-bcrypt", ssha: "/d/htpasswd-ssha" };
const logs = { berth: "/d/berth-access.log", nginx: "/d/nginx-access.log" };
const every: Support = { log: undefined, auth: undefined, headers: undefined, compress: undefined };

Deno.test("featurePairs() with every feature: baseline, log, three middlewares, nginx {SSHA}", () => {
  const pairs = featurePairs(every, logs, files);
  assert.deepEqual(pairs.map((p) => [p.key, p.skip, p.htpasswd]), [
    ["base", undefined, ""],
    ["log", undefined, ""],
    ["mw", undefined, files.bcrypt],
    ["mw-ssha", undefined, files.ssha],
  ]);
  assert.equal(pairs[1]!.berthVariant!.accessLog, logs.berth);
  assert.equal(pairs[1]!.variant.accessLog, logs.nginx);
  assert.deepEqual(pairs[2]!.berthVariant!.middlewares, ["auth", "headers", "compress"]);
  assert.deepEqual(pairs[2]!.variant.middlewares, ["auth", "headers", "compress"]);
  assert.equal(pairs[3]!.berthOf, "mw");
});

Deno.test("featurePairs() gives nginx the middlewares berth has, and skips what berth lacks", () => {
  const partial = featurePairs(
    { ...every, log: "this build has no --access-log", compress: "not applied" },
    logs,
    files,
  );
  assert.equal(partial[1]!.skip, "this build has no --access-log");
  assert.deepEqual(partial[2]!.berthVariant!.middlewares, ["auth", "headers"]);
  assert.deepEqual(partial[2]!.variant.middlewares, ["auth", "headers"]);
  assert.equal(partial[2]!.label, "auth + headers");
  assert.equal(partial[2]!.skip, undefined);

  const none = featurePairs({ ...every, auth: "x", headers: "y", compress: "z" }, logs, files);
  assert.equal(none[2]!.skip, "this build applies none of the middlewares");
  assert.deepEqual(none[2]!.variant.middlewares, ["auth", "headers", "compress"]);

  const noAuth = featurePairs({ ...every, auth: "not applied" }, logs, files);
  assert.deepEqual(noAuth.map((p) => p.key), ["base", "log", "mw"]);
});

Deno.test("eachPairs() measures each middleware alone and compression applied, skipping the absent", () => {
  const pairs = eachPairs({ ...every, headers: "not applied" }, files);
  assert.deepEqual(pairs.map((p) => [p.key, p.variant.middlewares, p.skip ?? null]), [
    ["each-base", [], null],
    ["auth", ["auth"], null],
    ["auth-ssha", ["auth"], null],
    ["headers", ["headers"], "not applied"],
    ["compress", ["compress"], null],
    ["gzip", ["compress"], null],
  ]);
  assert.equal(pairs.find((p) => p.key === "gzip")!.gzip, true);
  assert.equal(pairs.find((p) => p.key === "auth-ssha")!.htpasswd, files.ssha);
  // Keys are unique beside featurePairs' (both groups count wrk's requests in one map by key).
  const keys = [...featurePairs(every, logs, files), ...pairs].map((p) => p.key);
  assert.equal(new Set(keys).size, keys.length);
});
