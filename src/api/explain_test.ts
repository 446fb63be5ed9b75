import assert from "node:assert/strict";
import { WATCHED, withTable } from "./_explain_testing.ts";
import { addToken, fixture, instanceSpec } from "./_testing.ts";

/** Makes `name` a Raft member of the fixture's store (as a conf change would). */
function member(f: ReturnType<typeof fixture>, id: number, name: string, address: string) {
  const voters = [...f.store.members().map((m) => m.id), id];
  const r = f.store.apply(f.store.appliedIndex() + 1, {
    type: "conf",
    voters,
    learners: [],
    upsert: { id, name, address },
  });
  assert.ok(r.ok, r.error);
}

async function nodes(f: ReturnType<typeof fixture>) {
  member(f, 1, "n1", "10.0.0.1:8300");
  member(f, 2, "n2", "10.0.0.2:8300");
  await f.cluster.propose({
    type: "node.register",
    name: "n1",
    address: "10.0.0.1",
    meta: { api: "http://10.0.0.1:8500" },
  });
  await f.cluster.propose({
    type: "node.register",
    name: "n2",
    address: "10.0.0.2",
    meta: { api: "http://10.0.0.2:8500" },
  });
}

Deno.test("GET /v1/berth/explain?service= shows health by source, routes, and ejections on every member", async () => {
  const asked: string[] = [];
  const f = withTable({}, (member, q) => {
    asked.push(`${member} ${JSON.stringify(q)}`);
    return Promise.resolve({ proxy: true, ejected: [{ instance: "n1:web-1:80", untilMs: 5 }] });
  });
  try {
    await nodes(f);
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({ httpHosts: ["web.test"] }),
    });
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({
        id: "n1:web-2:80",
        address: "10.0.0.2",
        httpHosts: ["web.test"],
        docker: { state: "unhealthy", detail: "curl: connection refused" },
      }),
    });
    const r = await f.app.request("/v1/berth/explain?service=web");
    assert.equal(r.status, 200);
    const e = await r.json();
    assert.equal(e.kind, "service");
    assert.deepEqual(e.instances.map((i: { id: string; served: boolean }) => [i.id, i.served]), [
      ["n1:web-1:80", true],
      ["n1:web-2:80", false],
    ]);
    assert.equal(e.instances[1].sources.docker.status, "critical");
    assert.deepEqual(e.routes.http, [
      { host: "web.test", prefix: "/", edge: false, servedBy: "web" },
    ]);
    assert.deepEqual(asked, [
      'n2 {"q":"ejections","instances":["n1:web-1:80","n1:web-2:80"]}',
    ]);
    assert.deepEqual(e.ejections, [
      {
        member: "n1",
        state: "answered",
        ejected: [{ instance: "n1:web-2:80", untilMs: 99 }],
        error: null,
      },
      {
        member: "n2",
        state: "answered",
        ejected: [{ instance: "n1:web-1:80", untilMs: 5 }],
        error: null,
      },
    ]);
    assert.ok(e.summary.includes("1 of 2 instances pass health"));
    assert.ok(
      e.summary.some((l: string) => /n1:web-2:80 is critical: .*connection refused/.test(l)),
    );
    assert.ok(e.summary.includes("n1:web-1:80 is ejected by the proxy on n2"));
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain?service= shows a member that does not answer as unknown", async () => {
  const f = withTable({}, () => Promise.reject(new Error("no answer within 2000 ms")));
  try {
    await nodes(f);
    await f.cluster.propose({ type: "register", instance: instanceSpec() });
    const e = await (await f.app.request("/v1/berth/explain?service=web")).json();
    assert.deepEqual(e.ejections[1], {
      member: "n2",
      state: "unknown",
      ejected: [],
      error: "no answer within 2000 ms",
    });
    assert.ok(e.summary.some((l: string) => l.startsWith("no route: no instance names a host")));
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain?url= names the route and its members, or why none", async () => {
  const f = withTable();
  try {
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({
        httpHosts: ["web.test"],
        httpPath: "/app",
        meta: { "berth.http.redirect": "https" },
      }),
    });
    const e = await (await f.app.request(
      `/v1/berth/explain?url=${encodeURIComponent("http://WEB.test:8080/app/x?y=1")}`,
    )).json();
    assert.deepEqual(e.matched, { host: "web.test", prefix: "/app", edge: false, service: "web" });
    assert.equal(e.path, "/app/x?y=1");
    assert.deepEqual(e.route.members.map((m: { instance: string }) => m.instance), ["n1:web-1:80"]);
    // This member serves no HTTPS: the edge does not redirect (edge_rules.ts routeOrAnswer).
    assert.equal(e.rules[0], "berth.http.redirect=https: not applied: this member serves no HTTPS");
    assert.equal(e.rules.at(-1), "the instance gets /app/x?y=1");
    assert.equal(e.pick, "n1:web-1:80");
    const none = await (await f.app.request("/v1/berth/explain?target=web.test/other")).json();
    assert.equal(none.kind, "url");
    assert.equal(none.matched, null);
    assert.match(none.reasons[0], /host web\.test has routes \/app; none is a prefix of \/other/);
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain refuses bad input with 400 and unknown targets with 404", async () => {
  const f = withTable();
  try {
    for (
      const [q, status, want] of [
        ["", 400, /exactly one of/],
        ["?service=a&url=b", 400, /got service, url/],
        ["?service=%20", 400, /\?service= is empty/],
        [`?container=${"x".repeat(600)}`, 400, /longer than 512/],
        [`?url=${encodeURIComponent("ftp://a/b")}`, 400, /url: ftp: URLs are not proxied/],
        [`?url=${encodeURIComponent("http://[::1/x")}`, 400, /is not a URL/],
        ["?service=nope", 404, /no service "nope"/],
        ["?container=nope", 404, /^container "nope": the Docker watcher is off on this member/],
        [
          "?target=nope",
          404,
          /^no service, container or URL named "nope" \(no service has that name; a URL holds a \/\): container "nope": /,
        ],
      ] as const
    ) {
      const r = await f.app.request(`/v1/berth/explain${q}`);
      assert.equal(r.status, status, q);
      const text = await r.text();
      assert.match(text, want);
      assert.equal(text.trim().split("\n").length, 1);
    }
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain?container= adds each instance's state in the store", async () => {
  const f = withTable({
    explain: {
      container: (q) => q === "web-1" ? { container: WATCHED, seenAgoMs: 7 } : { error: "none" },
    },
  });
  try {
    await f.cluster.propose({ type: "register", instance: instanceSpec() });
    const e = await (await f.app.request("/v1/berth/explain?target=web-1")).json();
    assert.equal(e.kind, "container");
    assert.equal(e.seenAgoMs, 7);
    assert.deepEqual(e.problems, WATCHED.problems);
    assert.equal(e.instances[0].registered, true);
    assert.equal(e.instances[0].state.status, "passing");
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain?container= asks the member the store says runs it, once", async () => {
  const asked: string[] = [];
  const f = withTable(
    { explain: { container: () => ({ error: "no running container here" }) } },
    (n, q) => {
      asked.push(`${n} ${JSON.stringify(q)}`);
      return Promise.resolve({ container: { ...WATCHED, name: "api-1" }, seenAgoMs: 3 });
    },
  );
  try {
    await nodes(f);
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({ id: "n2:api-1:80", node: "n2", meta: { container: "api-1" } }),
    });
    const e = await (await f.app.request("/v1/berth/explain?container=api-1")).json();
    assert.equal(e.kind, "container");
    assert.equal(e.member, "n2");
    assert.equal(e.name, "api-1");
    assert.equal(e.seenAgoMs, 3);
    assert.deepEqual(asked, ['n2 {"q":"container","query":"api-1"}']);
    // `&local` asks no other member.
    const r = await f.app.request("/v1/berth/explain?container=api-1&local");
    assert.equal(r.status, 404);
    assert.match(await r.text(), /no running container here/);
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain needs agent:read, then service:read on what it shows", async () => {
  const f = withTable({ aclDefault: "deny" });
  try {
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({ httpHosts: ["web.test"] }),
    });
    addToken(f.store, "agent-only", 'agent_prefix "" { policy = "read" }');
    addToken(
      f.store,
      "both",
      'agent_prefix "" { policy = "read" }\nservice "web" { policy = "read" }',
    );
    const get = (q: string, token: string) =>
      f.app.request(`/v1/berth/explain${q}`, { headers: { "X-Consul-Token": token } });
    assert.equal((await get("?service=web", "nope")).status, 403);
    assert.equal((await get("?service=web", "agent-only")).status, 403);
    assert.equal((await get("?url=web.test/", "agent-only")).status, 403);
    const both = await get("?service=web", "both");
    assert.equal(both.status, 200);
    // Instances also need node:read on their node, as in /v1/berth/instances.
    const hidden = await both.json();
    assert.deepEqual(hidden.instances, []);
    assert.deepEqual(hidden.routes.options.members, []);
    const url = await (await get("?url=web.test/", "both")).json();
    assert.deepEqual(url.route.members, []);
    assert.equal(url.pick, null);
    assert.equal(both.headers.get("X-Consul-Results-Filtered-By-ACLs"), "true");
    addToken(
      f.store,
      "nodes-too",
      'agent_prefix "" { policy = "read" }\nservice "web" { policy = "read" }\n' +
        'node_prefix "" { policy = "read" }',
    );
    const all = await (await get("?service=web", "nodes-too")).json();
    assert.deepEqual(all.instances.map((i: { id: string }) => i.id), ["n1:web-1:80"]);
    assert.equal(all.routes.options.members.length, 1);
    assert.equal((await get("?url=web.test/", "both")).status, 200);
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain?url= picks what the balancer would, skipping this member's ejected", async () => {
  const f = withTable();
  try {
    for (const [id, address] of [["n1:web-1:80", "10.0.0.1"], ["n1:web-2:80", "10.0.0.2"]]) {
      await f.cluster.propose({
        type: "register",
        instance: instanceSpec({ id, address, httpHosts: ["web.test"] }),
      });
    }
    // withTable's proxy report ejects n1:web-2:80 on this member.
    const e = await (await f.app.request("/v1/berth/explain?url=web.test/")).json();
    assert.equal(e.pick, "n1:web-1:80");
    assert.match(e.pickNote, /^round_robin/);
    const long = await f.app.request(`/v1/berth/explain?url=web.test/&key=${"k".repeat(600)}`);
    assert.equal(long.status, 400);
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain?container= asks every member for a container registered nowhere", async () => {
  const asked: string[] = [];
  const f = withTable(
    { explain: { container: () => ({ error: "no running container here" }) } },
    (n, q) => {
      asked.push(`${n} ${JSON.stringify(q)}`);
      return Promise.resolve(
        n === "n3" ? { container: WATCHED, seenAgoMs: 1 } : { error: "no running container here" },
      );
    },
  );
  try {
    await nodes(f);
    await f.cluster.propose({ type: "node.register", name: "n3", address: "10.0.0.3", meta: {} });
    member(f, 3, "n3", "10.0.0.3:8300");
    const e = await (await f.app.request("/v1/berth/explain?container=ignored-1")).json();
    assert.equal(e.member, "n3");
    assert.equal(e.id, "abc");
    assert.deepEqual(asked.sort(), [
      'n2 {"q":"container","query":"ignored-1"}',
      'n3 {"q":"container","query":"ignored-1"}',
    ]);
  } finally {
    f.close();
  }
  const g = withTable(
    { explain: { container: () => ({ error: "no running container here" }) } },
    (n) =>
      n === "n2"
        ? Promise.resolve({ error: "none" })
        : Promise.reject(new Error("no answer within 2000 ms")),
  );
  try {
    await nodes(g);
    await g.cluster.propose({ type: "node.register", name: "n3", address: "10.0.0.3", meta: {} });
    member(g, 3, "n3", "10.0.0.3:8300");
    const r = await g.app.request("/v1/berth/explain?container=gone");
    assert.equal(r.status, 404);
    assert.equal(
      await r.text(),
      'container "gone": no running container here, nor on the 1 other member(s) that answered; ' +
        "not known: n3 (no answer within 2000 ms)\n",
    );
  } finally {
    g.close();
  }
});

Deno.test("GET /v1/berth/explain asks only Raft members, never a catalog node record", async () => {
  const asked: string[] = [];
  const f = withTable({}, (n) => {
    asked.push(n);
    return Promise.resolve({ proxy: true, ejected: [] });
  });
  try {
    await nodes(f);
    // Registered through the catalog (node:write), pointing its api meta elsewhere.
    await f.cluster.propose({
      type: "node.register",
      name: "ext",
      address: "10.9.9.9",
      meta: { api: "http://10.9.9.9:80" },
    });
    await f.cluster.propose({ type: "register", instance: instanceSpec() });
    const e = await (await f.app.request("/v1/berth/explain?service=web")).json();
    assert.deepEqual(asked, ["n2"]);
    assert.deepEqual(e.ejections.map((m: { member: string }) => m.member), ["n1", "n2"]);
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain?service= counts a UDP route (berth.udp.port) as a route, with its listener", async () => {
  const f = withTable({
    routes: () => ({
      listen: "127.0.0.1:80",
      https: null,
      http: [],
      tcp: [],
      udp: [{ port: 5353, service: "dns", state: "listening", error: null, flows: 0, dropped: 0 }],
      conflicts: [],
    }),
  });
  try {
    await nodes(f);
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({
        id: "n1:dns:53:udp",
        service: "dns",
        tags: ["udp"],
        meta: { "berth.udp.port": "5353" },
      }),
    });
    const e = await (await f.app.request("/v1/berth/explain?service=dns")).json();
    assert.deepEqual(e.routes.udp, [{ port: 5353, servedBy: "dns" }]);
    assert.deepEqual(
      e.udpListeners.map((l: { port: number; state: string }) => [l.port, l.state]),
      [
        [5353, "listening"],
      ],
    );
    assert.ok(!e.summary.some((l: string) => l.startsWith("no route")), e.summary.join("\n"));
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain?service= names another service that keeps its route only to a token that may read it", async () => {
  const f = withTable({ aclDefault: "deny" });
  try {
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({ id: "n1:aaa-1:80", service: "aaa-secret", httpHosts: ["web.test"] }),
    });
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({ httpHosts: ["web.test"] }),
    });
    addToken(
      f.store,
      "web-only",
      'agent_prefix "" { policy = "read" }\nservice "web" { policy = "read" }',
    );
    const r = await f.app.request("/v1/berth/explain?service=web", {
      headers: { "X-Consul-Token": "web-only" },
    });
    const text = await r.text();
    assert.equal(r.status, 200);
    assert.ok(!text.includes("aaa-secret"), text);
    const e = JSON.parse(text);
    assert.equal(e.routes.http[0].servedBy, "(another service)");
    assert.ok(e.routes.conflicts.length > 0);
    assert.ok(e.summary.includes("route web.test/ is served by (another service) (conflict)"));
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain?url= on a member without a proxy answers the target, proxy off, no route", async () => {
  const f = fixture({ explain: {} });
  try {
    const r = await f.app.request(
      `/v1/berth/explain?url=${encodeURIComponent("http://web.test/x?q=1")}`,
    );
    assert.equal(r.status, 200);
    const e = await r.json();
    assert.equal(e.kind, "url");
    assert.equal(e.proxy, "off");
    assert.equal(e.host, "web.test");
    assert.equal(e.matched, null);
    assert.deepEqual(e.reasons, ["the proxy is off on this member"]);
    assert.equal(e.pickNote, "the proxy is off on this member");
    assert.deepEqual([e.conflicts, e.route, e.pick, e.rules, e.ejections], [
      [],
      null,
      null,
      [],
      [],
    ]);
  } finally {
    f.close();
  }
});
