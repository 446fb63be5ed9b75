/**
 * Test fixtures: an in-memory store, a LocalCluster and the app over them.
 *
 * @module
 */
import type { Hono } from "hono";
import { LocalCluster } from "../cluster/testing.ts";
import { Store } from "../store/mod.ts";
import { type ApiOptions, createApp } from "./app.ts";

export { instanceSpec } from "../../test/fixtures.ts";

export interface Fixture {
  store: Store;
  cluster: LocalCluster;
  app: Hono;
  abort: AbortController;
  close(): void;
}

export function fixture(over: Partial<ApiOptions> = {}): Fixture {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" });
  const abort = new AbortController();
  const app = createApp({
    store,
    cluster,
    node: "n1",
    advertise: "10.0.0.1",
    version: "0.0.0-test",
    token: null,
    signal: abort.signal,
    random: () => 0,
    ...over,
  });
  return {
    store,
    cluster,
    app,
    abort,
    close() {
      abort.abort();
      store.close();
    },
  };
}

export function put(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "PUT",
    headers,
    body: typeof body === "string" || body instanceof Uint8Array
      ? body as BodyInit
      : JSON.stringify(body),
  };
}
