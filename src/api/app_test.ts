import assert from "node:assert/strict";
import {
  BusyError,
  ClosedError,
  type ClusterError,
  NoLeaderError,
  NotLeaderError,
  RejectedError,
  TimeoutError,
  UnknownMemberError,
} from "../cluster/mod.ts";
import { closeAll, leaderOf, threeMembers } from "../../test/clusters.ts";
import { LEGACY_SNAPSHOT_BYTES_MAX, SnapshotDecoder } from "../store/mod.ts";
import { addToken, fixture, instanceSpec, put } from "./_testing.ts";

Deno.test("createApp() unknown routes answer 404 with one line", async () => {
  const f = fixture();
  const r = await f.app.request("/v1/nope");
  assert.equal(r.status, 404);
  assert.equal(await r.text(), "no route for GET /v1/nope\n");
  const wrong = await f.app.request("/v1/agent/check/register");
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get("Allow"), "PUT");
  assert.match(
    await wrong.text(),
    /^method GET not allowed on \/v1\/agent\/check\/register \(use PUT\)$/m,
  );
  assert.equal((await f.app.request("/v1/kv/a/b", { method: "POST" })).status, 405);
  f.close();
});

Deno.test("createApp() reads wait for the read barrier unless ?stale", async () => {
  const f = fixture();
  let barriers = 0;
  f.cluster.readBarrier = () => {
    barriers++;
    return Promise.reject(new NoLeaderError("election in progress"));
  };
  const r = await f.app.request("/v1/catalog/services");
  assert.equal(r.status, 503);
  assert.match(await r.text(), /no cluster leader.*\?stale/);
  assert.equal((await f.app.request("/v1/catalog/services?consistent")).status, 503);
  const stale = await f.app.request("/v1/catalog/services?stale");
  assert.equal(stale.status, 200);
  assert.equal(stale.headers.get("X-Consul-Effective-Consistency"), "stale");
  assert.equal(barriers, 2);
  f.close();
});

Deno.test("createApp() a write without a leader answers 503", async () => {
  const f = fixture();
  f.cluster.propose = () => Promise.reject(new NoLeaderError("no leader elected"));
  const r = await f.app.request("/v1/kv/k", put("v"));
  assert.equal(r.status, 503);
  assert.match(await r.text(), /no cluster leader: no leader elected/);
  f.close();
});

Deno.test("GET /v1/status/leader and /v1/status/peers answer Consul's strings", async () => {
  const f = fixture();
  const r = await f.app.request("/v1/status/leader");
  assert.equal(await r.text(), '"127.0.0.1:8300"');
  assert.deepEqual(await (await f.app.request("/v1/status/peers")).json(), ["127.0.0.1:8300"]);
  f.close();
});

Deno.test("GET /v1/agent/self and /v1/agent/members describe this node", async () => {
  const f = fixture({ config: { node: "n1", token: "s3cret", dataDir: "/d" } });
  const self = await (await f.app.request("/v1/agent/self")).json();
  assert.equal(self.Config.NodeName, "n1");
  assert.equal(self.Config.Datacenter, "dc1");
  assert.equal(self.Config.Version, "0.0.0-test");
  assert.equal(self.Member.Name, "n1");
  assert.equal(self.Member.Addr, "127.0.0.1");
  assert.equal(self.Member.Port, 8300);
  assert.equal(self.Member.Status, 1);
  assert.equal(self.DebugConfig.token, "<redacted>");
  assert.equal(self.DebugConfig.dataDir, "/d");
  const members = await (await f.app.request("/v1/agent/members")).json();
  assert.equal(members.length, 1);
  assert.equal(members[0].Name, "n1");
  assert.equal(members[0].Tags.raft_role, "voter");
  f.close();
});

Deno.test("GET /v1/berth/status, /v1/berth/instances and /v1/berth/members", async () => {
  const f = fixture();
  await f.cluster.propose({ type: "register", instance: instanceSpec() });
  await f.cluster.propose({ type: "register", instance: instanceSpec({ id: "d", service: "db" }) });
  const s = await (await f.app.request("/v1/berth/status")).json();
  assert.equal(s.leader, "n1");
  assert.equal(s.appliedIndex, 2);
  const all = await (await f.app.request("/v1/berth/instances")).json();
  assert.deepEqual(all.map((i: { id: string }) => i.id), ["d", "n1:web-1:80"]);
  const web = await (await f.app.request("/v1/berth/instances?service=web")).json();
  assert.equal(web.length, 1);
  assert.equal(web[0].containerId, "abc");
  assert.equal(web[0].createIndex, 1);
  const m = await (await f.app.request("/v1/berth/members")).json();
  assert.equal(m[0].name, "n1");
  f.close();
});

Deno.test("GET /metrics reports the store in Prometheus text plus extraMetrics", async () => {
  const f = fixture({ extraMetrics: () => "berth_dns_queries_total 7" });
  await f.cluster.propose({ type: "register", instance: instanceSpec() });
  await f.cluster.propose({
    type: "register",
    instance: instanceSpec({ id: "x", docker: { state: "paused", detail: "" } }),
  });
  await f.app.request("/v1/kv/a", put("1"));
  const r = await f.app.request("/metrics");
  assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await r.text();
  assert.match(text, /^berth_applied_index 3$/m);
  assert.match(text, /^berth_instances\{status="passing"\} 1$/m);
  assert.match(text, /^berth_instances\{status="critical"\} 1$/m);
  assert.match(text, /^berth_services 1$/m);
  assert.match(text, /^berth_kv_keys 1$/m);
  assert.match(text, /^# TYPE berth_uptime_seconds gauge$/m);
  assert.match(text, /^berth_dns_queries_total 7$/m);
  f.close();
});

Deno.test("GET /ui is a self-contained page that reads the JSON API", async () => {
  const f = fixture();
  const r = await f.app.request("/ui");
  assert.equal(r.status, 200);
  const html = await r.text();
  assert.match(html, /<title>berth<\/title>/);
  assert.match(html, /\/v1\/berth\/instances/);
  assert.doesNotMatch(html, /(src|href)="https?:/);
  const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1];
  assert.notEqual(script, undefined);
  new Function(script!); // throws SyntaxError if the page's script does not parse
  f.close();
});

Deno.test("GET /v1/berth/routes lists the proxy's routes, a refused TCP port as failed, UDP routes", async () => {
  const report = {
    listen: "127.0.0.1:8080",
    https: "127.0.0.1:8443",
    http: [{ host: "web.example.com", prefix: "/", service: "web", targets: 1, proto: "http1" }],
    tcp: [{
      port: 8500,
      service: "consul",
      state: "failed" as const,
      error: "port 8500 is the agent's own api listener (127.0.0.1:8500)",
    }],
    udp: [{
      port: 5353,
      service: "dns",
      state: "listening" as const,
      error: null,
      flows: 2,
      dropped: 0,
    }],
    conflicts: [],
    ejected: [],
  };
  const f = fixture({ routes: () => report });
  const r = await f.app.request("/v1/berth/routes");
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), report);
  f.close();
  const off = fixture();
  const o = await off.app.request("/v1/berth/routes");
  assert.equal(o.status, 200);
  assert.deepEqual(await o.json(), {
    listen: null,
    https: null,
    http: [],
    tcp: [],
    udp: [],
    conflicts: [],
    ejected: [],
  });
  off.close();
});

Deno.test("GET /ui shows the routes, failed TCP routes marked, UDP routes with their flows", async () => {
  const f = fixture();
  const html = await (await f.app.request("/ui")).text();
  assert.match(html, /get\("\/v1\/berth\/routes"\)/);
  assert.match(html, /\(routes\.udp \?\? \[\]\)\.map\(\(r\) => \["udp :" \+ r\.port/);
  assert.match(html, /<table id="routes">/);
  assert.match(html, /\.failed \{ color/);
  f.close();
});

Deno.test("GET /ui has a per-service explain view that reads /v1/berth/explain, as text only", async () => {
  const f = fixture();
  const html = await (await f.app.request("/ui")).text();
  assert.match(html, /get\("\/v1\/berth\/explain\?service=" \+ encodeURIComponent\(explaining\)\)/);
  assert.match(html, /<section id="explain" hidden>/);
  assert.doesNotMatch(html, /innerHTML|insertAdjacentHTML|document\.write/);
  f.close();
});

Deno.test("GET /ui: the explain view has the sections of berth explain SERVICE: conflicts, rejected labels, UDP routes", async () => {
  const f = fixture();
  const html = await (await f.app.request("/ui")).text();
  f.close();
  assert.match(html, /<ul id="explain-conflicts"><\/ul>/);
  assert.match(
    html,
    /list\("explain-conflicts", e\.routes === null \|\| e\.routes\.conflicts\.length === 0/,
  );
  assert.match(html, /<table id="explain-rejected">/);
  assert.match(html, /fill\("explain-rejected", \(e\.rejected \?\? \[\]\)/);
  assert.match(html, /\.\.\.\(r\.udp \?\? \[\]\)\.map\(\(u\) => \{/);
  assert.doesNotMatch(html, /innerHTML|insertAdjacentHTML|document\.write/);
});

Deno.test("GET /ui: a malformed #explain= hash opens nothing and does not stop the page", async () => {
  const f = fixture();
  const html = await (await f.app.request("/ui")).text();
  f.close();
  const source = /function explainTarget\(hash\) \{[\s\S]*?\n\}/.exec(html)?.[0];
  assert.ok(source !== undefined, "the page reads the hash through explainTarget");
  const explainTarget = new Function(`${source}; return explainTarget;`)() as (
    h: string,
  ) => string | null;
  assert.equal(explainTarget("#explain=%E0"), null);
  assert.equal(explainTarget("#explain=web%20api"), "web api");
  assert.equal(explainTarget("#other"), null);
  assert.match(html, /let explaining = explainTarget\(location\.hash\);/);
  // The open explanation is asked again only now and then, not on every 3 s refresh.
  assert.match(html, /Date\.now\(\) - explainedAtMs >= EXPLAIN_REFRESH_MS\) await explain\(\)/);
});

Deno.test("raft and join routes answer 501 without an admin; use it when given", async () => {
  const f = fixture();
  const r = await f.app.request("/v1/agent/join/10.0.0.2:8300", { method: "PUT" });
  assert.equal(r.status, 501);
  assert.match(await r.text(), /join is not supported/);
  f.close();
  const joined: string[] = [];
  const g = fixture({ admin: { join: (a) => Promise.resolve(void joined.push(a)) } });
  const ok = await g.app.request("/v1/agent/join/10.0.0.2%3A8300", { method: "PUT" });
  assert.equal(ok.status, 200);
  assert.deepEqual(joined, ["10.0.0.2:8300"]);
  g.close();
});

/** Snapshots need acl:write: the management token's (added as "mgmt"). */
const MGMT = { "X-Consul-Token": "mgmt" };

Deno.test("GET /v1/snapshot streams a user snapshot that PUT /v1/snapshot restores", async () => {
  const f = fixture();
  addToken(f.store, "mgmt", "management");
  await f.app.request("/v1/kv/a", put("1"));
  const r = await f.app.request("/v1/snapshot", { headers: MGMT });
  assert.equal(r.status, 200);
  const bytes = new Uint8Array(await r.arrayBuffer());
  const frames = new SnapshotDecoder().push(bytes);
  assert.deepEqual(frames.flatMap((x) => "t" in x ? [x.t] : []), ["kv"]);
  await f.app.request("/v1/kv/a", put("2"));
  await f.app.request("/v1/kv/b", put("3"));
  const back = await f.app.request("/v1/snapshot", { method: "PUT", headers: MGMT, body: bytes });
  assert.equal(back.status, 200, await back.clone().text());
  assert.deepEqual(f.store.kvKeys(""), ["a"]);
  assert.equal(new TextDecoder().decode(f.store.kvGet("a")!.value), "1");
  f.close();
});

Deno.test("PUT /v1/snapshot takes a snapshot of the old one-blob format (schema 1), and refuses one over its limit", async () => {
  const f = fixture();
  addToken(f.store, "mgmt", "management");
  const old = Deno.readFileSync(
    new URL("../store/testdata/schema1_snapshot.msgpack", import.meta.url),
  );
  const r = await f.app.request("/v1/snapshot", {
    method: "PUT",
    headers: MGMT,
    body: old.slice(),
  });
  assert.equal(r.status, 200, await r.clone().text());
  assert.ok(f.store.instances().length > 0);
  assert.ok(f.store.instances().every((i) => "docker" in i && "checkResult" in i));
  const big = new Uint8Array(LEGACY_SNAPSHOT_BYTES_MAX + 1);
  big[0] = 0x85;
  const over = await f.app.request("/v1/snapshot", { method: "PUT", headers: MGMT, body: big });
  assert.equal(over.status, 400);
  assert.match(await over.text(), /old format is over its \d+-byte limit/);
  f.close();
});

Deno.test("PUT /v1/snapshot refuses a damaged or truncated file with 400, changing nothing", async () => {
  const f = fixture();
  addToken(f.store, "mgmt", "management");
  await f.app.request("/v1/kv/a", put("1"));
  const good = new Uint8Array(
    await (await f.app.request("/v1/snapshot", { headers: MGMT })).arrayBuffer(),
  );
  const cases: [string, Uint8Array, RegExp][] = [
    ["junk", new TextEncoder().encode("hello"), /not a berth store snapshot/],
    ["truncated", good.subarray(0, good.byteLength - 2), /truncated/],
    ["empty", new Uint8Array(0), /empty, not a berth store snapshot/],
  ];
  for (const [name, body, err] of cases) {
    const r = await f.app.request("/v1/snapshot", {
      method: "PUT",
      headers: MGMT,
      body: body.slice(),
    });
    assert.equal(r.status, 400, name);
    assert.match(await r.text(), err);
    assert.deepEqual(f.store.kvKeys(""), ["a"], name);
  }
  f.close();
});

Deno.test("createApp() maps each named cluster error to its HTTP status, one line, no stack", async () => {
  const cases: [ClusterError, number, RegExp][] = [
    [new NoLeaderError("no leader elected"), 503, /^no cluster leader: no leader elected; retry/],
    [new NotLeaderError("not the leader"), 503, /^no cluster leader: not the leader/],
    [new BusyError("too many proposals in flight"), 503, /^too many proposals in flight; retry/],
    [new ClosedError("cluster is closed"), 503, /^cluster is closed/],
    [new TimeoutError("proposal timed out"), 504, /^proposal timed out\n$/],
    [new RejectedError("proposal of 5 bytes is over 4"), 400, /^proposal of 5 bytes is over 4\n$/],
    [UnknownMemberError.of("n9", ["n1"]), 400, /^no member named n9; members: n1\n$/],
  ];
  for (const [e, status, re] of cases) {
    const f = fixture({ admin: { removePeer: () => Promise.reject(e) } });
    const r = await f.app.request("/v1/berth/raft/peers/n9", { method: "DELETE" });
    assert.equal(r.status, status, e.name);
    assert.match(await r.text(), re);
    f.close();
  }
});

Deno.test("POST /v1/berth/raft/transfer-leader and DELETE /v1/berth/raft/peers/ answer an empty member name with 400 naming the members", async () => {
  const called: (string | null)[] = [];
  const f = fixture({
    admin: {
      transferLeader: (to) => (called.push(to), Promise.resolve()),
      removePeer: (node) => (called.push(node), Promise.resolve()),
    },
  });
  try {
    const cases: [string, string, RegExp][] = [
      [
        "POST",
        "/v1/berth/raft/transfer-leader?to=",
        /^\?to= is empty: name a member \(n1\) or leave \?to out\n$/,
      ],
      ["POST", "/v1/berth/raft/transfer-leader?to=%20", /^\?to= is empty/],
      [
        "DELETE",
        "/v1/berth/raft/peers/",
        /^the member name is empty: DELETE \/v1\/berth\/raft\/peers\/NAME, NAME one of n1\n$/,
      ],
      ["DELETE", "/v1/berth/raft/peers/%20", /^the member name is empty/],
    ];
    for (const [method, path, re] of cases) {
      const r = await f.app.request(path, { method });
      assert.equal(r.status, 400, path);
      assert.match(await r.text(), re);
    }
    assert.deepEqual(called, [], "nothing reached the cluster");
    assert.equal(
      (await f.app.request("/v1/berth/raft/transfer-leader", { method: "POST" })).status,
      200,
    );
    assert.deepEqual(called, [null], "no ?to: the best voter");
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/members on a follower shows the leader's last contact with every member", async () => {
  const ms = await threeMembers();
  try {
    const leader = await leaderOf(ms);
    const follower = ms.find((m) => m !== leader)!;
    const f = fixture({ store: follower.store, cluster: follower.cluster, node: follower.name });
    try {
      for (const path of ["/v1/berth/members", "/v1/berth/raft/peers"]) {
        const rows = await (await f.app.request(path)).json() as {
          name: string;
          lastContactMs: number | null;
          contactFrom: string;
        }[];
        assert.equal(rows.length, 3);
        for (const r of rows) {
          assert.notEqual(r.lastContactMs, null, `${path} ${r.name}`);
          assert.equal(r.contactFrom, "leader");
        }
      }
      // ?stale: this member's own view.
      const stale = await (await f.app.request("/v1/berth/members?stale")).json() as {
        contactFrom: string;
      }[];
      assert.ok(stale.every((r) => r.contactFrom === "local"));
    } finally {
      f.close();
    }
  } finally {
    await closeAll(ms);
  }
});
