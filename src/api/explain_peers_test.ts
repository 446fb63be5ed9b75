import assert from "node:assert/strict";
import type { NodeInfo } from "../store/mod.ts";
import { answerPeerQuery, peerContainers, peerEjections } from "./explain_peers.ts";

function node(name: string, status: "alive" | "down" = "alive"): NodeInfo {
  return { name, address: "10.0.0.1", status, meta: {}, createIndex: 1, modifyIndex: 1 };
}

const VIEW = {
  listen: "127.0.0.1:80",
  https: null,
  http: [],
  tcp: [],
  conflicts: [],
  ejected: [{ instance: "a", address: "10.0.0.2", port: 80, untilMs: 9 }, {
    instance: "b",
    address: "10.0.0.3",
    port: 80,
    untilMs: 7,
  }],
};

Deno.test("answerPeerQuery() answers ejections among the asked ids and the watcher's container view", async () => {
  const s = {
    routes: () => VIEW,
    container: (q: string) => ({ error: `no ${q} here` }),
  };
  assert.deepEqual(await answerPeerQuery({ q: "ejections", instances: ["a", "z"] }, s), {
    proxy: true,
    ejected: [{ instance: "a", untilMs: 9 }],
  });
  assert.deepEqual(
    await answerPeerQuery({ q: "ejections", instances: ["a"] }, { routes: () => null }),
    { proxy: false, ejected: [] },
  );
  assert.deepEqual(await answerPeerQuery({ q: "container", query: "web-1" }, s), {
    error: "no web-1 here",
  });
  assert.deepEqual(
    await answerPeerQuery({ q: "container", query: "web-1" }, { routes: () => null }),
    {
      error: "the Docker watcher is off on this member",
    },
  );
});

Deno.test("answerPeerQuery() refuses malformed questions with one line", async () => {
  const s = { routes: () => VIEW };
  for (
    const [q, want] of [
      [{ q: "ejections", instances: "a" }, /malformed ejections query/],
      [{ q: "ejections", instances: [1] }, /malformed ejections query/],
      [{ q: "ejections", instances: Array(5000).fill("a") }, /malformed ejections query/],
      [{ q: "container", query: "" }, /malformed container query/],
      [{ q: "container", query: "x".repeat(600) }, /malformed container query/],
      [{ q: "kv" }, /unknown query/],
    ] as const
  ) {
    await assert.rejects(answerPeerQuery(q as Record<string, unknown>, s), want);
  }
});

Deno.test("peerEjections() asks every other member, and says why one is unknown or runs no proxy", async () => {
  const nodes = [node("n1"), node("n2"), node("n3"), node("n4", "down"), node("n5")];
  const r = await peerEjections(
    (n) =>
      n === "n2"
        ? Promise.resolve({
          proxy: true,
          ejected: [{ instance: "a", untilMs: 1 }, { instance: "other", untilMs: 2 }, { bad: 1 }],
        })
        : n === "n3"
        ? Promise.resolve({ proxy: false, ejected: [] })
        : Promise.reject(new Error("no answer within 2000 ms")),
    nodes,
    "n1",
    new Set(["a"]),
  );
  assert.deepEqual(r.map((m) => [m.member, m.state, m.ejected, m.error]), [
    ["n2", "answered", [{ instance: "a", untilMs: 1 }], null],
    ["n3", "no-proxy", [], null],
    ["n4", "unknown", [], "the member is down"],
    ["n5", "unknown", [], "no answer within 2000 ms"],
  ]);
});

Deno.test("peerContainers() keeps each member's answer or why it has none, and refuses malformed ones", async () => {
  const r = await peerContainers(
    (n) =>
      n === "n2"
        ? Promise.resolve({ error: "none here" })
        : n === "n3"
        ? Promise.resolve({ container: "nonsense" })
        : Promise.reject(new Error("no answer within 2000 ms")),
    [node("n1"), node("n2"), node("n3"), node("n4"), node("n5", "down")],
    "n1",
    "web-1",
  );
  assert.deepEqual(r, [
    { member: "n2", answer: { error: "none here" }, failure: null },
    { member: "n3", answer: null, failure: "its answer is malformed" },
    { member: "n4", answer: null, failure: "no answer within 2000 ms" },
  ]);
});
