/**
 * Bad input never gives a 500 or a stack trace: every route of the API app (enumerated from the
 * app itself, so a new route is covered without touching this file) gets odd path parameters,
 * query parameters and bodies, against a real single-member Raft cluster and the agent's own
 * admin operations. In process, no agent process.
 */
import assert from "node:assert/strict";
import type { Hono } from "hono";
import { clusterAdmin } from "../src/agent.ts";
import { createApp } from "../src/api/mod.ts";
import { RaftCluster } from "../src/cluster/mod.ts";
import { hashSecret } from "../src/acl/mod.ts";
import { GLOBAL_MANAGEMENT_ID, Store } from "../src/store/mod.ts";
import { waitFor } from "./wait.ts";

const LONG = "x".repeat(10_000);
/** A probe slower than this is listed (a bad input that blocks is a finding too). */
const SLOW_PROBE_MS = 2_000;

/** Values for a path parameter (already in URL form: some are deliberately bad encodings). */
const PATH_VALUES = [
  "x",
  "%",
  "%E0%A4%A",
  "%00",
  "..",
  "a%2Fb",
  "%C3%BC",
  "a%20b",
  "-1",
  "NaN",
  "%7B%7D",
  "'%22%3C%3E",
  "n9",
  "127.0.0.1:1",
  "[::1]:99999",
  LONG,
];

/** Every query parameter any route reads, and a few it does not. */
const QUERY_NAMES = [
  "index",
  "wait",
  "cas",
  "flags",
  "recurse",
  "separator",
  "keys",
  "raw",
  "stale",
  "consistent",
  "passing",
  "tag",
  "service",
  "to",
  "acquire",
  "release",
  "dc",
  "filter",
  "node-meta",
  "near",
  "replace-existing-checks",
];

const QUERY_VALUES = [
  "",
  "x",
  "-1",
  "0",
  "1.5",
  "1e309",
  "99999999999999999999",
  "NaN",
  "%",
  "%00",
  "10m",
  "0s",
  "-5s",
  "1h",
  "n9",
  LONG,
];

const JSON_ODD = [null, true, 1, -1, 1.5, 1e308, "", "x", [], [1], {}, { a: 1 }, LONG];
const FIELDS = [
  "Name",
  "ID",
  "Port",
  "Address",
  "Tags",
  "Meta",
  "Check",
  "Checks",
  "Weights",
  "Node",
  "Service",
  "ServiceID",
  "CheckID",
  "Status",
  "TaggedAddresses",
  "NodeMeta",
  "EnableTagOverride",
];

function bodies(): (string | Uint8Array | undefined)[] {
  const out: (string | Uint8Array | undefined)[] = [
    undefined,
    "",
    "{",
    "null",
    "[]",
    "1",
    '"s"',
    "{}",
    "\u0000\u0001",
    '{"a":\r\n\u0007x', // V8's JSON error quotes this excerpt raw
    new Uint8Array([0xff, 0xfe, 0x00, 0x80]),
    "[".repeat(100_000),
    JSON.stringify({ Name: "a", Port: 80, Check: { HTTP: "http://%", Interval: "1s" } }),
    JSON.stringify({ Node: "n", Address: "1.2.3.4", Service: { Service: "s", Port: 1e9 } }),
    " ".repeat(4 * 1024 * 1024),
  ];
  for (const f of FIELDS) {
    for (const v of JSON_ODD) out.push(JSON.stringify({ Name: "fz", Node: "fz", [f]: v }));
  }
  return out;
}

interface Probe {
  /** The route probed, as the app lists it (`PUT /v1/kv/*`). */
  route: string;
  method: string;
  url: string;
  body?: string | Uint8Array;
}

/** A route path with each `:param` and `*` replaced by `value`. */
function fill(path: string, value: string): string {
  return path.replace(/:[^/]+/g, value).replace(/\*$/, value);
}

function probes(app: Hono): Probe[] {
  const routes = app.routes.filter((r) => r.method !== "ALL");
  const seen = new Set<string>();
  const out: Probe[] = [];
  let route = "";
  const add = (p: Omit<Probe, "route">) => {
    const key = `${p.method} ${p.url} ${p.body === undefined ? "-" : String(p.body).slice(0, 64)}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ ...p, route });
    }
  };
  for (const { method, path } of routes) {
    route = `${method} ${path}`;
    // Paths: odd parameter values; a wrong method on the same path.
    for (const v of PATH_VALUES) add({ method, url: fill(path, v) });
    add({ method: method === "GET" ? "PATCH" : "GET", url: fill(path, "x") });
    const base = fill(path, "k");
    // Queries: each name with each value; index with a short wait so nothing blocks long.
    for (const name of QUERY_NAMES) {
      const wait = name === "index" ? "&wait=5ms" : "";
      for (const v of QUERY_VALUES) {
        add({ method, url: `${base}?${name}=${encodeURIComponent(v)}${wait}` });
      }
      add({ method, url: `${base}?${name}${wait}` });
      add({ method, url: `${base}?${name}=1&${name}=2${wait}` });
    }
    // Bodies, on every method that can carry one (a GET request cannot).
    if (method !== "GET") { for (const body of bodies()) add({ method, url: base, body }); }
  }
  return out;
}

/** An error answer: one line of text (a JSON body has no raw control characters either). */
// deno-lint-ignore no-control-regex
const ONE_LINE = /^[^\x00-\x1f\x7f]*\n?$/;

/** The management token realApp() adds (snapshots need acl:write). */
const MGMT = { "X-Consul-Token": "mgmt" };

/** A single-member Raft cluster (in memory) and the app over it with the agent's admin. */
async function realApp(): Promise<{ app: Hono; close(): Promise<void> }> {
  const store = Store.open(":memory:");
  const cluster = new RaftCluster({
    store,
    raftPath: ":memory:",
    node: "n1",
    bind: { host: "127.0.0.1", port: 0 },
    advertise: "127.0.0.1",
    bootstrap: true,
    join: [],
    voters: 3,
    nodeTimeoutMs: 10_000,
    tickMs: 20,
    log: () => {},
  });
  await cluster.start();
  await waitFor("a leader", () => cluster.status().role === "leader");
  await cluster.propose({
    type: "acl.token.set",
    token: {
      accessorId: "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa",
      secretHash: hashSecret(MGMT["X-Consul-Token"]),
      description: "management",
      policies: [{ id: GLOBAL_MANAGEMENT_ID }],
      local: false,
      createTimeMs: 0,
    },
  });
  const abort = new AbortController();
  const app = createApp({
    store,
    cluster,
    node: "n1",
    advertise: "127.0.0.1",
    version: "0.0.0-test",
    aclDefault: "allow",
    signal: abort.signal,
    random: () => 0,
    // The agent's own admin operations; leaving would end the test's cluster.
    admin: clusterAdmin(cluster, () => Promise.resolve()),
  });
  return {
    app,
    close: async () => {
      abort.abort();
      await cluster.close();
      store.close();
    },
  };
}

Deno.test("PUT /v1/snapshot answers 400 naming the problem for a snapshot it cannot restore", async () => {
  const { app, close } = await realApp();
  try {
    for (
      const [body, message] of [
        ["", /not a berth store snapshot/],
        ["{", /not a berth store snapshot/],
        [" ".repeat(4 * 1024 * 1024), /not a berth store snapshot/],
      ] as const
    ) {
      const r = await app.request("/v1/snapshot", { method: "PUT", body, headers: MGMT });
      const text = await r.text();
      assert.equal(r.status, 400, text);
      assert.match(text, message);
      assert.equal(text.trimEnd().split("\n").length, 1);
    }
  } finally {
    await close();
  }
});

Deno.test("API: every route answers bad input without a 500 or a stack trace", async () => {
  const { app, close } = await realApp();
  const logged: string[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => void logged.push(args.map(String).join(" "));
  const failures = new Map<string, string>();
  let failed = 0;
  const slow: string[] = [];
  let n = 0;
  try {
    for (const p of probes(app)) {
      n++;
      const before = logged.length;
      const startedMs = Date.now();
      let status: number;
      let text: string;
      try {
        const r = await app.request(p.url, {
          method: p.method,
          body: p.body as BodyInit | undefined,
        });
        status = r.status;
        text = await r.text();
      } catch (e) {
        status = -1;
        text = `threw: ${(e as Error).stack}`;
      }
      const what = `${p.method} ${p.url.slice(0, 120)} body=${
        p.body === undefined ? "none" : JSON.stringify(String(p.body).slice(0, 60))
      }`;
      if (Date.now() - startedMs > SLOW_PROBE_MS) {
        slow.push(`${what}: ${Date.now() - startedMs} ms`);
      }
      let finding: string | null = null;
      if (status === 500 || status === -1) finding = `${status}: ${text}`;
      else if (/\n\s+at |file:\/\//.test(text)) finding = `stack in body: ${text}`;
      else if (status >= 400 && !ONE_LINE.test(text)) {
        finding = `not one line: ${JSON.stringify(text)}`;
      } else if (logged.length > before) finding = `logged: ${logged.slice(before).join(" | ")}`;
      if (finding !== null) {
        // One example per route and kind of answer, so a report stays readable.
        const kind = `${p.route} → ${finding.slice(0, 60)}`;
        if (!failures.has(kind)) failures.set(kind, `${what} → ${finding.slice(0, 300)}`);
        failed++;
      }
    }
  } finally {
    console.error = consoleError;
    await close();
  }
  assert.ok(n > 5_000, `only ${n} probes`);
  assert.deepEqual([...failures.values()], [], `${failed} of ${n} probes failed`);
  assert.deepEqual(slow.slice(0, 20), [], `${slow.length} probes were slow`);
});
