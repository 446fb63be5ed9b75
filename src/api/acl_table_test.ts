/**
 * The (token, route, status) table: every row of ROUTE_RULES (so every route of the app, see
 * acl_routes_test.ts) is requested with the management token, a token without policies, a token
 * with exactly the rule the row names, an unknown token, and the anonymous token under
 * `--acl-default allow`; what each must answer follows from the row's need.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { needOf, ROUTE_RULES } from "./acl_routes.ts";
import { addToken, type Fixture, fixture, put } from "./_testing.ts";

const MGMT = "mgmt";
const NONE = "no-policy";
const RIGHT = "exact-rule";
const SID = "sid";

interface Sample {
  /** The path to request; `SID` is replaced by the seeded session's id. */
  path: string;
  body?: unknown;
  /** The rules of the token that holds exactly the right (omitted for open and acl rows). */
  rules?: string;
  /** Filtered rows: a string the answer holds only for a token that may read it. */
  hidden?: string;
  /** Open rows whose handler refuses in this state, for any token (not the ACL middleware). */
  handlerRefuses?: RegExp;
}

const read = (kind: string, name: string) => `${kind} "${name}" { policy = "read" }`;
const write = (kind: string, name: string) => `${kind} "${name}" { policy = "write" }`;
const WEB = `${read("service", "web")}\n${read("node", "n1")}`;
const UUID = "12345678-1234-4234-8234-123456789abc";

/** One sample request per route, or several when query parameters change what it answers. */
const SAMPLES: Record<string, Sample | Sample[]> = {
  "GET /v1/catalog/services": { path: "/v1/catalog/services", rules: WEB, hidden: "web" },
  "GET /v1/catalog/service/:name": { path: "/v1/catalog/service/web", rules: WEB, hidden: "web" },
  "GET /v1/catalog/datacenters": { path: "/v1/catalog/datacenters" },
  "GET /v1/catalog/nodes": { path: "/v1/catalog/nodes", rules: read("node", "n1"), hidden: "n1" },
  "GET /v1/catalog/node/:node": { path: "/v1/catalog/node/n1", rules: WEB, hidden: "web" },
  "PUT /v1/catalog/register": {
    path: "/v1/catalog/register",
    body: { Node: "n2", Address: "10.0.0.2", Service: { Service: "api", Port: 1 } },
    rules: `${write("node", "n2")}\n${write("service", "api")}`,
  },
  "PUT /v1/catalog/deregister": {
    path: "/v1/catalog/deregister",
    body: { Node: "n1", ServiceID: "web" },
    rules: write("service", "web"),
  },
  "GET /v1/health/service/:name": { path: "/v1/health/service/web", rules: WEB, hidden: "web" },
  "GET /v1/health/checks/:service": {
    path: "/v1/health/checks/web",
    rules: WEB,
    hidden: "svc-ttl",
  },
  "GET /v1/health/state/:state": {
    path: "/v1/health/state/any",
    rules: read("node", "n1"),
    hidden: "serfHealth",
  },
  "GET /v1/health/node/:node": {
    path: "/v1/health/node/n1",
    rules: read("node", "n1"),
    hidden: "serfHealth",
  },
  // A flag-like parameter is on when present, whatever its value (Consul's reading), for the ACL
  // rule and the handler alike: `?recurse=false` is a filtered list, never the bare key.
  "GET /v1/kv": [
    { path: "/v1/kv", rules: read("key", "") },
    { path: "/v1/kv?recurse=false", rules: read("key", "app/a"), hidden: "app/a" },
    { path: "/v1/kv?keys=0", rules: read("key", "app/a"), hidden: "app/a" },
  ],
  "GET /v1/kv/*": [
    { path: "/v1/kv/app/a", rules: read("key", "app/a") },
    { path: "/v1/kv/app/a?recurse", rules: read("key", "app/a"), hidden: "app/a" },
    { path: "/v1/kv/app/a?recurse=false", rules: read("key", "app/a"), hidden: "app/a" },
    { path: "/v1/kv/app/a?recurse=0", rules: read("key", "app/a"), hidden: "app/a" },
    { path: "/v1/kv/app/a?keys=false", rules: read("key", "app/a"), hidden: "app/a" },
    { path: "/v1/kv/app/?keys=0&separator=/", rules: read("key", "app/a"), hidden: "app/a" },
    { path: "/v1/kv/app/a?raw", rules: read("key", "app/a") },
    { path: "/v1/kv/app/a?raw=false", rules: read("key", "app/a") },
    // The value is "1": a raw list answers the first readable entry's bytes.
    { path: "/v1/kv/app/a?recurse=false&raw", rules: read("key", "app/a"), hidden: "1" },
  ],
  "PUT /v1/kv/*": [
    { path: "/v1/kv/app/b", body: "x", rules: write("key", "app/b") },
    { path: "/v1/kv/app/b?cas=0", body: "x", rules: write("key", "app/b") },
    { path: "/v1/kv/app/b?cas=false", body: "x", rules: write("key", "app/b") },
    { path: `/v1/kv/app/b?acquire=${SID}`, body: "x", rules: write("key", "app/b") },
    { path: `/v1/kv/app/b?release=${SID}`, body: "x", rules: write("key", "app/b") },
    { path: "/v1/kv/app/b?acquire=false", body: "x", rules: write("key", "app/b") },
  ],
  "DELETE /v1/kv": [
    { path: "/v1/kv?recurse", rules: `key_prefix "" { policy = "write" }` },
    { path: "/v1/kv?recurse=false", rules: `key_prefix "" { policy = "write" }` },
  ],
  "DELETE /v1/kv/*": [
    { path: "/v1/kv/app/a", rules: write("key", "app/a") },
    { path: "/v1/kv/app/a?cas=0", rules: write("key", "app/a") },
    { path: "/v1/kv/app?recurse", rules: `key_prefix "app" { policy = "write" }` },
    { path: "/v1/kv/app?recurse=false", rules: `key_prefix "app" { policy = "write" }` },
    { path: "/v1/kv/app?recurse=0", rules: `key_prefix "app" { policy = "write" }` },
  ],
  "PUT /v1/session/create": { path: "/v1/session/create", body: {}, rules: write("session", "n1") },
  "PUT /v1/session/destroy/:id": {
    path: `/v1/session/destroy/${SID}`,
    rules: write("session", "n1"),
  },
  "PUT /v1/session/renew/:id": { path: `/v1/session/renew/${SID}`, rules: write("session", "n1") },
  "GET /v1/session/info/:id": {
    path: `/v1/session/info/${SID}`,
    rules: read("session", "n1"),
    hidden: "ID",
  },
  "GET /v1/session/node/:node": {
    path: "/v1/session/node/n1",
    rules: read("session", "n1"),
    hidden: "ID",
  },
  "GET /v1/session/list": { path: "/v1/session/list", rules: read("session", "n1"), hidden: "ID" },
  "PUT /v1/txn": {
    path: "/v1/txn",
    body: [{ KV: { Verb: "set", Key: "app/t", Value: "" } }],
    rules: write("key", "app/t"),
  },
  "GET /v1/status/leader": { path: "/v1/status/leader" },
  "GET /v1/status/peers": { path: "/v1/status/peers" },
  "GET /v1/agent/self": { path: "/v1/agent/self", rules: read("agent", "n1") },
  "GET /v1/agent/members": { path: "/v1/agent/members", rules: read("node", "n1"), hidden: "n1" },
  "GET /v1/agent/services": { path: "/v1/agent/services", rules: WEB, hidden: "web" },
  "PUT /v1/agent/service/register": {
    path: "/v1/agent/service/register",
    body: { Name: "api", Port: 1 },
    rules: write("service", "api"),
  },
  "PUT /v1/agent/service/deregister/:id": {
    path: "/v1/agent/service/deregister/web",
    rules: write("service", "web"),
  },
  "PUT /v1/agent/join/:addr": { path: "/v1/agent/join/10.0.0.9", rules: write("agent", "n1") },
  "PUT /v1/agent/leave": { path: "/v1/agent/leave", rules: write("agent", "n1") },
  "GET /v1/agent/checks": {
    path: "/v1/agent/checks",
    rules: read("node", "n1"),
    hidden: "node-ttl",
  },
  "GET /v1/agent/service/:id": { path: "/v1/agent/service/web", rules: read("service", "web") },
  "PUT /v1/agent/check/register": {
    path: "/v1/agent/check/register",
    body: { ID: "c2", Name: "c2", TTL: "30s" },
    rules: write("node", "n1"),
  },
  "PUT /v1/agent/check/deregister/:id": {
    path: "/v1/agent/check/deregister/node-ttl",
    rules: write("node", "n1"),
  },
  "PUT /v1/agent/check/pass/:id": {
    path: "/v1/agent/check/pass/svc-ttl",
    rules: write("service", "web"),
  },
  "PUT /v1/agent/check/warn/:id": {
    path: "/v1/agent/check/warn/svc-ttl",
    rules: write("service", "web"),
  },
  "PUT /v1/agent/check/fail/:id": {
    path: "/v1/agent/check/fail/node-ttl",
    rules: write("node", "n1"),
  },
  "PUT /v1/agent/check/update/:id": {
    path: "/v1/agent/check/update/node-ttl",
    body: { Status: "passing" },
    rules: write("node", "n1"),
  },
  "GET /v1/berth/status": { path: "/v1/berth/status", rules: read("agent", "n1") },
  "GET /v1/berth/members": { path: "/v1/berth/members", rules: read("node", "n1"), hidden: "n1" },
  "GET /v1/berth/raft/peers": { path: "/v1/berth/raft/peers", rules: `operator = "read"` },
  "GET /v1/berth/routes": { path: "/v1/berth/routes", rules: read("agent", "n1") },
  "GET /v1/berth/instances": { path: "/v1/berth/instances", rules: WEB, hidden: "web" },
  // agent:read for the route, service:read for the service the answer shows.
  "GET /v1/berth/explain": {
    path: "/v1/berth/explain?service=web",
    rules: `${read("agent", "n1")}\n${read("service", "web")}`,
  },
  "POST /v1/berth/raft/transfer-leader": {
    path: "/v1/berth/raft/transfer-leader",
    rules: `operator = "write"`,
  },
  "DELETE /v1/berth/raft/peers/:node": {
    path: "/v1/berth/raft/peers/n9",
    rules: `operator = "write"`,
  },
  "DELETE /v1/berth/raft/peers/": { path: "/v1/berth/raft/peers/", rules: `operator = "write"` },
  "GET /v1/berth/loop": { path: "/v1/berth/loop", rules: read("agent", "n1") },
  "POST /v1/berth/gc": { path: "/v1/berth/gc", rules: write("agent", "n1") },
  "GET /v1/berth/acme": { path: "/v1/berth/acme", rules: `operator = "read"` },
  "POST /v1/berth/acme/renew/:name": {
    path: "/v1/berth/acme/renew/web.example.com",
    rules: `operator = "write"`,
  },
  "POST /v1/berth/tokens": { path: "/v1/berth/tokens", body: {} },
  "GET /v1/berth/tokens": { path: "/v1/berth/tokens" },
  "DELETE /v1/berth/tokens/:id": { path: "/v1/berth/tokens/abc123" },
  "GET /v1/berth/certs": { path: "/v1/berth/certs", rules: `operator = "read"` },
  "GET /v1/berth/certs/:name": { path: "/v1/berth/certs/web", rules: `operator = "read"` },
  "PUT /v1/berth/certs/:name": {
    path: "/v1/berth/certs/web",
    body: {},
    rules: `operator = "write"`,
  },
  "DELETE /v1/berth/certs/:name": { path: "/v1/berth/certs/web", rules: `operator = "write"` },
  "GET /v1/snapshot": { path: "/v1/snapshot" },
  "PUT /v1/snapshot": { path: "/v1/snapshot", body: "not a snapshot" },
  "PUT /v1/acl/policy": { path: "/v1/acl/policy", body: {} },
  "GET /v1/acl/policy/name/:name": { path: "/v1/acl/policy/name/p" },
  "GET /v1/acl/policy/:id": { path: `/v1/acl/policy/${UUID}` },
  "PUT /v1/acl/policy/:id": { path: `/v1/acl/policy/${UUID}`, body: {} },
  "DELETE /v1/acl/policy/:id": { path: `/v1/acl/policy/${UUID}` },
  "GET /v1/acl/policies": { path: "/v1/acl/policies" },
  "PUT /v1/acl/token": { path: "/v1/acl/token", body: {} },
  "GET /v1/acl/token/self": { path: "/v1/acl/token/self" },
  "GET /v1/acl/token/:accessor": { path: `/v1/acl/token/${UUID}` },
  "PUT /v1/acl/token/:accessor": { path: `/v1/acl/token/${UUID}`, body: {} },
  "DELETE /v1/acl/token/:accessor": { path: `/v1/acl/token/${UUID}` },
  "GET /v1/acl/tokens": { path: "/v1/acl/tokens" },
  "PUT /v1/acl/token/:accessor/clone": { path: `/v1/acl/token/${UUID}/clone`, body: {} },
  // A management token exists here, so Consul's one-time bootstrap is over for everyone.
  "PUT /v1/acl/bootstrap": {
    path: "/v1/acl/bootstrap",
    handlerRefuses: /^Permission denied: "ACL bootstrap no longer allowed"/,
  },
  "GET /metrics": { path: "/metrics", rules: read("agent", "n1") },
  "GET /ui": { path: "/ui" },
  "GET /ui/": { path: "/ui/" },
  "GET /": { path: "/" },
};

/**
 * A deny-by-default app in the state every sample needs: a member n1 with its node, service web
 * with a TTL check, a node TTL check, key app/a, a session of n1; tokens MGMT, NONE and RIGHT
 * (with `rules`).
 */
async function seeded(rules: string | undefined, aclDefault: "allow" | "deny" = "deny") {
  const f = fixture({ aclDefault });
  const s = f.store;
  s.apply(s.appliedIndex() + 1, {
    type: "conf",
    voters: [1],
    learners: [],
    upsert: { id: 1, name: "n1", address: "127.0.0.1:8300" },
  });
  addToken(s, MGMT, "management");
  addToken(s, NONE, null);
  if (rules !== undefined) addToken(s, RIGHT, rules);
  const h = { "X-Consul-Token": MGMT };
  const ok = async (path: string, body: unknown) => {
    const r = await f.app.request(path, put(body, h));
    if (r.status !== 200) throw new Error(`seed ${path}: ${r.status} ${await r.text()}`);
    return r;
  };
  await ok("/v1/catalog/register", { Node: "n1", Address: "10.0.0.1" });
  await ok("/v1/agent/service/register", { Name: "web", ID: "web", Port: 80 });
  await ok("/v1/agent/check/register", { ID: "svc-ttl", ServiceID: "web", TTL: "30s" });
  await ok("/v1/agent/check/register", { ID: "node-ttl", Name: "node ttl", TTL: "30s" });
  await ok("/v1/kv/app/a", "1");
  const { ID } = await (await ok("/v1/session/create", {})).json();
  return { f, sid: ID as string };
}

async function call(
  f: Fixture,
  sample: Sample,
  method: string,
  sid: string,
  token: string | null,
): Promise<{ status: number; text: string }> {
  const headers: Record<string, string> = token === null ? {} : { "X-Consul-Token": token };
  const body = sample.body === undefined
    ? undefined
    : typeof sample.body === "string"
    ? sample.body
    : JSON.stringify(sample.body);
  const r = await f.app.request(sample.path.replace(SID, sid), { method, headers, body });
  return { status: r.status, text: await r.text() };
}

Deno.test("every route answers each token as its ACL row says (token × route table)", async (t) => {
  for (const rule of ROUTE_RULES) {
    const route = `${rule.method} ${rule.path}`;
    const samples = SAMPLES[route];
    assert.ok(samples !== undefined, `no sample request for ${route} in acl_table_test.ts`);
    for (const sample of [samples].flat()) {
      const key = `${route} ${sample.path}`;
      const query = (n: string) =>
        new URL(sample.path, "http://x").searchParams.get(n) ?? undefined;
      const need = needOf(rule, query);
      await t.step(key, async () => {
        const ask = async (token: string | null, aclDefault: "allow" | "deny" = "deny") => {
          const { f, sid } = await seeded(sample.rules, aclDefault);
          try {
            return await call(f, sample, rule.method, sid, token);
          } finally {
            f.close();
          }
        };
        const granted = (r: { status: number; text: string }, who: string) => {
          assert.notEqual(r.status, 403, `${key} ${who}: ${r.text}`);
          assert.ok(r.status < 500 || r.status === 501, `${key} ${who}: ${r.status} ${r.text}`);
        };
        const refused = (r: { status: number; text: string }, who: string, why: RegExp) => {
          assert.equal(r.status, 403, `${key} ${who}: ${r.status} ${r.text}`);
          assert.match(r.text, why, `${key} ${who}`);
        };
        const lacks = /^Permission denied: token with AccessorID '[0-9a-f-]+' lacks permission/;
        if (sample.handlerRefuses !== undefined) {
          assert.equal(need.kind, "open", `${key}: only open rows may be refused by the handler`);
          for (const token of [MGMT, NONE, "unknown-token", null]) {
            refused(await ask(token), `token ${token}`, sample.handlerRefuses);
          }
          return;
        }
        const mgmt = await ask(MGMT);
        granted(mgmt, "management");
        if (need.kind === "open") {
          granted(await ask(NONE), "no policy");
          granted(await ask("unknown-token"), "unknown token");
          granted(await ask(null), "anonymous under deny");
          return;
        }
        refused(await ask("unknown-token"), "unknown token", /^ACL not found\n$/);
        const none = await ask(NONE);
        const allowAnonymous = await ask(null, "allow");
        if (need.kind === "filtered") {
          assert.equal(mgmt.status, 200, `${key} management: ${mgmt.text}`);
          assert.ok(mgmt.text.includes(sample.hidden!), `${key}: management sees ${sample.hidden}`);
          granted(none, "no policy");
          assert.ok(!none.text.includes(sample.hidden!), `${key}: no policy sees ${none.text}`);
          const exact = await ask(RIGHT);
          assert.ok(exact.text.includes(sample.hidden!), `${key} exact rule: ${exact.text}`);
          assert.ok(allowAnonymous.text.includes(sample.hidden!), `${key} anonymous under allow`);
          return;
        }
        if (need.kind === "right" && need.resource === "none") {
          granted(none, "no policy (any known token)");
          return;
        }
        refused(none, "no policy", lacks);
        if (need.kind === "right" && need.resource === "acl") {
          // acl rights are the management token's alone, whatever --acl-default says.
          refused(allowAnonymous, "anonymous under allow", lacks);
          return;
        }
        granted(await ask(RIGHT), `exact rule ${JSON.stringify(sample.rules)}`);
        granted(allowAnonymous, "anonymous under allow");
      });
    }
  }
});

Deno.test("fuzzed tokens and token headers never crash: 403 (or 400), one line", async () => {
  const { f } = await seeded(undefined);
  try {
    const latin1 = fc.string({
      unit: fc.integer({ min: 0x20, max: 0xff }).map(String.fromCharCode),
    });
    const headerSets = fc.oneof(
      latin1.map((v) => [["X-Consul-Token", v]]),
      latin1.map((v) => [["Authorization", `Bearer ${v}`]]),
      latin1.map((v) => [["Authorization", v]]),
      fc.array(latin1, { maxLength: 40 }).map((vs) => vs.map((v) => ["X-Consul-Token", v])),
      fc.tuple(latin1, latin1).map(([a, b]) => [["Authorization", `Bearer ${a}`], [
        "Authorization",
        `Bearer ${b}`,
      ]]),
      fc.integer({ min: 257, max: 70_000 }).map((n) => [["X-Consul-Token", "x".repeat(n)]]),
    );
    const query = fc.oneof(
      fc.constant(""),
      // Malformed percent-encoding and an empty token.
      fc.constantFrom("?token=%", "?token=%ZZ", "?token=%C3%28", "?token=", "?token&token=x"),
      fc.string({ unit: "grapheme", maxLength: 300 }).map((v) => `?token=${encodeURIComponent(v)}`),
    );
    await fc.assert(
      fc.asyncProperty(headerSets, query, async (pairs, q) => {
        const headers = new Headers();
        for (const [k, v] of pairs) headers.append(k!, v!);
        const r = await f.app.request(`/v1/kv/app/a${q}`, { headers });
        const text = await r.text();
        assert.ok(r.status === 403 || r.status === 400, `${r.status} ${text}`);
        assert.equal(text.trimEnd().split("\n").length, 1, text);
        // An open route answers whatever the token.
        const open = await f.app.request(`/v1/status/leader${q}`, { headers });
        assert.equal(open.status, 200);
        await open.body?.cancel();
      }),
      { numRuns: 300 },
    );
  } finally {
    f.close();
  }
});
