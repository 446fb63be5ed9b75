import assert from "node:assert/strict";
import { LocalCluster } from "../cluster/testing.ts";
import { Store } from "../store/mod.ts";
import { ApiServer } from "./mod.ts";
import { waitFor } from "../../test/wait.ts";
import { makeTestCerts } from "../../test/test_certs.ts";
import { readTlsFiles } from "./tls_files.ts";

function server(store: Store, port = 0) {
  return new ApiServer({
    store,
    cluster: new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" }),
    node: "n1",
    advertise: "127.0.0.1",
    version: "test",
    aclDefault: "allow",
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

function tlsServer(store: Store, tls: { certPem: string; keyPem: string }) {
  return new ApiServer({
    store,
    cluster: new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" }),
    node: "n1",
    advertise: "127.0.0.1",
    version: "test",
    aclDefault: "allow",
    listen: { host: "127.0.0.1", port: 0 },
    tls,
  });
}

/** The body of GET /v1/status/leader over https trusting `caFile`, or the fetch error's text. */
async function leaderOver(url: string, caFile: string): Promise<string> {
  const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(caFile)] });
  try {
    const init: RequestInit & { client: Deno.HttpClient } = { client };
    return await (await fetch(`${url}/v1/status/leader`, init)).json();
  } catch (e) {
    return String((e as Error).cause ?? e);
  } finally {
    client.close();
  }
}

Deno.test("ApiServer with tls serves https only, with the given certificate", async () => {
  const certs = await makeTestCerts();
  const store = Store.open(":memory:");
  const api = tlsServer(store, readTlsFiles(certs.crt, certs.key));
  try {
    await api.start();
    assert.equal(api.scheme, "https");
    const port = api.address.port;
    assert.equal(await leaderOver(`https://127.0.0.1:${port}`, certs.caCrt), "127.0.0.1:8300");
    assert.equal(await leaderOver(`https://localhost:${port}`, certs.caCrt), "127.0.0.1:8300");
    assert.match(
      await leaderOver(`https://127.0.0.1:${port}`, certs.otherCaCrt),
      /invalid peer certificate: UnknownIssuer/,
    );
    await assert.rejects(fetch(`http://127.0.0.1:${port}/v1/status/leader`));
  } finally {
    await api.close();
    store.close();
    await certs.remove();
  }
});

Deno.test("ApiServer.setTls() serves the new certificate on the same port", async () => {
  const certs = await makeTestCerts();
  const store = Store.open(":memory:");
  const api = tlsServer(store, readTlsFiles(certs.crt, certs.key));
  try {
    await api.start();
    const url = `https://127.0.0.1:${api.address.port}`;
    // A blocked read on the old listener does not hold the swap up.
    const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(certs.caCrt)] });
    const init: RequestInit & { client: Deno.HttpClient } = { client };
    const blocked = fetch(`${url}/v1/catalog/services?index=1&wait=10m`, init);
    await waitFor("the read to block", async () => {
      const m = await (await fetch(`${url}/metrics`, init)).text();
      return /^berth_api_blocked_reads 1$/m.test(m);
    });
    await api.setTls(readTlsFiles(certs.otherCrt, certs.otherKey));
    assert.equal(`https://127.0.0.1:${api.address.port}`, url);
    assert.equal(await leaderOver(url, certs.otherCaCrt), "127.0.0.1:8300");
    assert.match(await leaderOver(url, certs.caCrt), /UnknownIssuer/);
    const closing = api.close();
    const r = await blocked;
    assert.equal(r.status, 200);
    await r.body?.cancel();
    await closing;
    client.close();
  } finally {
    await api.close();
    store.close();
    await certs.remove();
  }
});
