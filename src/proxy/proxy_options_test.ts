import assert from "node:assert/strict";
import { tcpHostOf } from "./proxy_options.ts";

const listen = { host: "127.0.0.2", port: 8080 };
const tls = { host: "127.0.0.3", port: 8443 };

Deno.test("tcpHostOf: defaults to the plain listener's host, then the HTTPS one's", () => {
  assert.equal(tcpHostOf({ listen }), "127.0.0.2");
  assert.equal(tcpHostOf({ listen: null, tls: { listen: tls, certs: () => [] } }), "127.0.0.3");
  assert.equal(tcpHostOf({ listen: null }), undefined);
});

Deno.test("tcpHostOf: an explicit tcpHost (null: TCP routes off) wins", () => {
  assert.equal(tcpHostOf({ listen, tcpHost: "127.0.0.9" }), "127.0.0.9");
  assert.equal(tcpHostOf({ listen, tcpHost: null }), null);
});
