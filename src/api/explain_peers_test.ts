import assert from "node:assert/strict";
import type { NodeInfo } from "../store/mod.ts";
import { PEER_TIMEOUT_MS, peerEjections, peerGetter } from "./explain_peers.ts";

function node(
  name: string,
  meta: Record<string, string>,
  status: "alive" | "down" = "alive",
): NodeInfo {
  return { name, address: "10.0.0.1", status, meta, createIndex: 1, modifyIndex: 1 };
}

/** A store without a CA whose Raft members are n2 at 10.0.0.2 and n3 at ::1. */
const NO_PKI = {
  pki: { ca: () => undefined },
  members: () => [
    { id: 2, name: "n2", address: "10.0.0.2:8300" },
    { id: 3, name: "n3", address: "[::1]:8300" },
  ],
} as never;

Deno.test("peerGetter() asks the node's api address with the token and reads its JSON", async () => {
  const seen: [string, string | null][] = [];
  const get = peerGetter(NO_PKI, (url, init) => {
    seen.push([String(url), new Headers(init?.headers).get("X-Consul-Token")]);
    return Promise.resolve(new Response(JSON.stringify({ ejected: [] })));
  });
  assert.deepEqual(await get(node("n2", { api: "http://10.0.0.2:8500" }), "/v1/x", "t"), {
    ejected: [],
  });
  assert.deepEqual(seen, [["http://10.0.0.2:8500/v1/x", "t"]]);
});

Deno.test("peerGetter() fails with one line: no address, an error status, no answer in time", async () => {
  const get = (f: typeof fetch) => peerGetter(NO_PKI, f);
  const ok = () => Promise.resolve(new Response("{}"));
  await assert.rejects(get(ok)(node("n2", {}), "/", undefined), /advertises no API address/);
  await assert.rejects(
    get(ok)(node("ext", { api: "http://10.0.0.2:8500" }), "/", undefined),
    /it is not a cluster member/,
  );
  await assert.rejects(
    get(ok)(node("n2", { api: "http://10.6.6.6:8500" }), "/", undefined),
    /its API address http:\/\/10\.6\.6\.6:8500 is not on its cluster address 10\.0\.0\.2:8300/,
  );
  assert.deepEqual(await get(ok)(node("n3", { api: "http://[::1]:8500" }), "/", undefined), {});
  await assert.rejects(
    get(() => Promise.resolve(new Response("Permission denied\n", { status: 403 })))(
      node("n2", { api: "http://10.0.0.2:1" }),
      "/",
      undefined,
    ),
    /it answered 403: Permission denied$/,
  );
  const hang: typeof fetch = (_u, init) =>
    new Promise((_, reject) =>
      init?.signal?.addEventListener("abort", () => reject(init.signal!.reason))
    );
  await assert.rejects(
    get(hang)(node("n2", { api: "http://10.0.0.2:1" }), "/", undefined),
    new RegExp(`no answer within ${PEER_TIMEOUT_MS} ms`),
  );
});

Deno.test("peerEjections() asks every other member with a proxy, and says why one is unknown", async () => {
  const nodes = [
    node("n1", {}),
    node("n2", {}),
    node("n3", { proxy: "false" }),
    node("n4", {}, "down"),
    node("n5", {}),
  ];
  const r = await peerEjections(
    (n) =>
      n.name === "n2"
        ? Promise.resolve({
          ejected: [{ instance: "a", untilMs: 1 }, { instance: "other", untilMs: 2 }, { bad: 1 }],
        })
        : Promise.reject(new Error("no answer within 2000 ms")),
    nodes,
    "n1",
    new Set(["a"]),
    undefined,
  );
  assert.deepEqual(r.map((m) => [m.member, m.state, m.ejected, m.error]), [
    ["n2", "answered", [{ instance: "a", untilMs: 1 }], null],
    ["n3", "no-proxy", [], null],
    ["n4", "unknown", [], "the member is down"],
    ["n5", "unknown", [], "no answer within 2000 ms"],
  ]);
});
