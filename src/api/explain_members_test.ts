import assert from "node:assert/strict";
import { addToken, fixture, instanceSpec } from "./_testing.ts";
import type { ApiOptions } from "./app.ts";
import type { PeerAsk, PeerQuery } from "./explain_peers.ts";
import type { ContainerExplain } from "../docker/mod.ts";

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

/** n1 (this member) and n2 as Raft members with node records. */
async function twoMembers(f: ReturnType<typeof fixture>, n2Meta: Record<string, string> = {}) {
  member(f, 1, "n1", "10.0.0.1:8300");
  member(f, 2, "n2", "10.0.0.2:8300");
  await f.cluster.propose({ type: "node.register", name: "n1", address: "10.0.0.1", meta: {} });
  await f.cluster.propose({ type: "node.register", name: "n2", address: "10.0.0.2", meta: n2Meta });
}

function watched(name: string, id: string, node: string): ContainerExplain {
  return {
    name,
    id,
    image: "berth-test",
    state: "running",
    networkMode: "bridge",
    labels: [],
    problems: [],
    ports: [],
    instances: [{ id: `${node}:${name}:80`, service: "web", address: "10.0.0.1", port: 80 }],
    proposeError: null,
    summary: "",
  };
}

Deno.test("GET /v1/berth/explain never sends the caller's token anywhere, whatever a node record's api meta says", async () => {
  // A node:write token may rewrite a member's catalog record (PUT /v1/catalog/register); an
  // `api` meta pointing at a port on the member's host once got the caller's token.
  const fetched: string[] = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = (u: string | URL | Request, init?: RequestInit) => {
    fetched.push(`${String(u)} ${new Headers(init?.headers).get("X-Consul-Token")}`);
    return Promise.resolve(new Response(JSON.stringify({ ejected: [] })));
  };
  const f = fixture({ explain: { container: () => ({ error: "not here" }) } });
  try {
    await twoMembers(f, { api: "http://10.0.0.2:9999" });
    addToken(f.store, "MANAGEMENT-SECRET", READ_ALL);
    await f.cluster.propose({ type: "register", instance: instanceSpec() });
    const headers = { "X-Consul-Token": "MANAGEMENT-SECRET" };
    assert.equal((await f.app.request("/v1/berth/explain?service=web", { headers })).status, 200);
    await f.app.request("/v1/berth/explain?container=web-1", { headers });
    assert.deepEqual(fetched, []);
  } finally {
    globalThis.fetch = realFetch;
    f.close();
  }
});

Deno.test("GET /v1/berth/explain asks members a plain question, with no token in it", async () => {
  const asked: [string, PeerQuery][] = [];
  const ask: PeerAsk = (m, q) => {
    asked.push([m, q]);
    return Promise.resolve(
      q.q === "ejections" ? { proxy: false, ejected: [] } : { error: "not here" },
    );
  };
  const f = fixture({ explain: { peer: ask, container: () => ({ error: "not here" }) } });
  try {
    await twoMembers(f);
    addToken(f.store, "MANAGEMENT-SECRET", READ_ALL);
    await f.cluster.propose({ type: "register", instance: instanceSpec() });
    const headers = { "X-Consul-Token": "MANAGEMENT-SECRET" };
    const e = await (await f.app.request("/v1/berth/explain?service=web", { headers })).json();
    assert.deepEqual(e.ejections[1], { member: "n2", state: "no-proxy", ejected: [], error: null });
    await f.app.request("/v1/berth/explain?container=web-1", { headers });
    assert.deepEqual(asked, [
      ["n2", { q: "ejections", instances: ["n1:web-1:80"] }],
      ["n2", { q: "container", query: "web-1" }],
    ]);
    assert.ok(!JSON.stringify(asked).includes("MANAGEMENT-SECRET"));
  } finally {
    f.close();
  }
});

const READ_ALL = 'agent_prefix "" { policy = "read" }\nservice_prefix "" { policy = "read" }\n' +
  'node_prefix "" { policy = "read" }';

/** A fixture whose own watcher and n2's both run a container called web-1. */
async function sameNameOnTwo(over: Partial<ApiOptions> = {}) {
  const f = fixture({
    explain: {
      container: (q) =>
        q === "web-1" || q === "aaa111"
          ? { container: watched("web-1", "aaa111", "n1"), seenAgoMs: 1 }
          : { error: "no running container here" },
      peer: (_m, q) =>
        Promise.resolve(
          q.q === "container" && (q.query === "web-1" || q.query === "bbb222")
            ? { container: watched("web-1", "bbb222", "n2"), seenAgoMs: 2 }
            : { error: "no running container here" },
        ),
    },
    ...over,
  });
  await twoMembers(f);
  for (const node of ["n1", "n2"]) {
    await f.cluster.propose({
      type: "register",
      instance: instanceSpec({
        id: `${node}:web-1:80`,
        node,
        containerId: node === "n1" ? "aaa111" : "bbb222",
        meta: { container: "web-1" },
      }),
    });
  }
  return f;
}

Deno.test("GET /v1/berth/explain?container= lists every member running a name, and ?node= picks one", async () => {
  const f = await sameNameOnTwo();
  try {
    const r = await f.app.request("/v1/berth/explain?container=web-1");
    assert.equal(r.status, 409);
    assert.equal(
      await r.text(),
      'container "web-1" runs on several members: n1 (aaa111), n2 (bbb222); name one with ' +
        "?node= (berth explain --node NAME) or give an id prefix\n",
    );
    const n2 = await (await f.app.request("/v1/berth/explain?container=web-1&node=n2")).json();
    assert.deepEqual([n2.member, n2.id, n2.instances[0].registered], ["n2", "bbb222", true]);
    const n1 = await (await f.app.request("/v1/berth/explain?container=web-1&node=n1")).json();
    assert.deepEqual([n1.member, n1.id], ["n1", "aaa111"]);
    const byId = await (await f.app.request("/v1/berth/explain?container=bbb222")).json();
    assert.equal(byId.member, "n2");
    const none = await f.app.request("/v1/berth/explain?container=web-1&node=n9");
    assert.equal(none.status, 404);
    assert.match(await none.text(), /\?node=n9: no cluster member has that name/);
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain?container= applies the caller's rights to another member's answer", async () => {
  const f = await sameNameOnTwo({ aclDefault: "deny" });
  try {
    addToken(f.store, "agent-only", 'agent_prefix "" { policy = "read" }');
    const r = await f.app.request("/v1/berth/explain?container=bbb222", {
      headers: { "X-Consul-Token": "agent-only" },
    });
    assert.equal(r.status, 403);
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain?container= needs node:read on the member, also for a container without instances", async () => {
  const bare: ContainerExplain = { ...watched("tool", "ccc333", "n1"), instances: [] };
  const f = fixture({
    aclDefault: "deny",
    explain: { container: () => ({ container: bare, seenAgoMs: 1 }) },
  });
  try {
    addToken(f.store, "agent-only", 'agent_prefix "" { policy = "read" }');
    addToken(
      f.store,
      "node-too",
      'agent_prefix "" { policy = "read" }\nnode "n1" { policy = "read" }',
    );
    const get = (token: string) =>
      f.app.request("/v1/berth/explain?container=tool&local", {
        headers: { "X-Consul-Token": token },
      });
    assert.equal((await get("agent-only")).status, 403);
    const ok = await get("node-too");
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).name, "tool");
  } finally {
    f.close();
  }
});

Deno.test("GET /v1/berth/explain?service= says instances are hidden by the token, not that none is registered", async () => {
  const f = fixture({ aclDefault: "deny" });
  try {
    await f.cluster.propose({ type: "register", instance: instanceSpec() });
    addToken(
      f.store,
      "svc",
      'agent_prefix "" { policy = "read" }\nservice "web" { policy = "read" }',
    );
    const e = await (await f.app.request("/v1/berth/explain?service=web", {
      headers: { "X-Consul-Token": "svc" },
    })).json();
    assert.deepEqual(e.instances, []);
    assert.equal(
      e.summary[0],
      "1 instance is registered on nodes this token may not read (node:read)",
    );
  } finally {
    f.close();
  }
});
