/**
 * Test helpers for the explain API's tests: a fixture whose explain sources read a route table
 * built from its store, and a container as a Docker watcher explains it.
 *
 * @module
 */
import { fixture } from "./_testing.ts";
import type { ApiOptions } from "./app.ts";
import type { PeerAsk } from "./explain_peers.ts";
import { buildRouteTable } from "../proxy/routes.ts";
import { explainServiceRoutes, explainUrl } from "../proxy/route_explain.ts";
import type { Store } from "../store/mod.ts";
import type { ContainerExplain } from "../docker/mod.ts";

/** A fixture whose explain sources read a route table built from its store at each call. */
export function withTable(over: Partial<ApiOptions> = {}, peer?: PeerAsk) {
  const held: { store?: Store } = {};
  const table = () => buildRouteTable(held.store!.instances(), held.store!.nodes());
  const { explain, ...rest } = over;
  const f = fixture({
    explain: {
      url: (t, ctx) => explainUrl(table(), t, ctx),
      serviceRoutes: (s) => explainServiceRoutes(table(), s),
      peer: peer ?? (() => Promise.reject(new Error("no peers in this test"))),
      ...explain,
    },
    routes: () => ({
      listen: "127.0.0.1:80",
      https: null,
      http: [],
      tcp: [],
      conflicts: [],
      ejected: [{ instance: "n1:web-2:80", address: "10.0.0.2", port: 80, untilMs: 99 }],
    }),
    ...rest,
  });
  held.store = f.store;
  return f;
}

export const WATCHED: ContainerExplain = {
  name: "web-1",
  id: "abc",
  image: "berth-test",
  state: "running",
  networkMode: "bridge",
  labels: [{ key: "berth.weight", value: "heavy", from: "label" }],
  problems: [{ label: "berth.weight", message: 'berth.weight="heavy": expected …; using 1' }],
  ports: [{
    port: "80/tcp",
    published: "0.0.0.0:32768",
    instance: "n1:web-1:80",
    service: "web",
    reason: null,
  }],
  instances: [{ id: "n1:web-1:80", service: "web", address: "10.0.0.1", port: 32768 }],
  proposeError: null,
  summary: "asks for 1 instance: n1:web-1:80",
};
