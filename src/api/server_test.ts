import assert from "node:assert/strict";
import { LocalCluster } from "../cluster/testing.ts";
import { Store } from "../store/mod.ts";
import { ApiServer } from "./mod.ts";
import { waitFor } from "../../test/wait.ts";

function server(store: Store, port = 0) {
  return new ApiServer({
    store,
    cluster: new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" }),
    node: "n1",
    advertise: "127.0.0.1",
    version: "test",
    token: null,
    listen: { host: "127.0.0.1", port },
  });
}

Deno.test("ApiServer.start() listens on an ephemeral port; close() ends blocked reads", async () => {
  const store = Store.open(":memory:");
  const api = server(store);
  await api.start();
  assert.notEqual(api.address.port, 0);
  const base = `http://127.0.0.1:${api.address.port}`;
  const leader = await fetch(`${base}/v1/status/leader`);
  assert.equal(await leader.json(), "127.0.0.1:8300");
  const blocked = fetch(`${base}/v1/catalog/services?index=1&wait=10m`);
  // Let the request reach the server before closing it.
  await waitFor("the read to block", async () => {
    const m = await (await fetch(`${base}/metrics`)).text();
    return /^berth_api_blocked_reads 1$/m.test(m);
  });
  const closing = api.close();
  const r = await blocked;
  assert.equal(r.status, 200);
  await r.body?.cancel();
  await closing;
  store.close();
});

Deno.test("ApiServer.start() names the address it cannot bind", async () => {
  const store = Store.open(":memory:");
  const first = server(store);
  await first.start();
  const second = server(store, first.address.port);
  await assert.rejects(
    second.start(),
    new RegExp(
      `^Error: api: cannot listen on 127\\.0\\.0\\.1:${first.address.port} \\(address in use\\)$`,
    ),
  );
  await first.close();
  store.close();
});
