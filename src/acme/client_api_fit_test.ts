/**
 * The real client fits the manager's interface (a type-level check: this file fails
 * `deno check` when AcmeClient drifts from AcmeApi).
 */
import assert from "node:assert/strict";
import { AcmeClient } from "./client.ts";
import { generateAccountKey } from "./jws.ts";
import type { AcmeApi, AcmeApiFactory } from "./client_api.ts";

Deno.test("AcmeClient is an AcmeApi the manager's factory can return", () => {
  const factory: AcmeApiFactory = (o) => new AcmeClient(o);
  const api: AcmeApi = factory({
    directoryUrl: "https://ca.test/dir",
    accountKey: generateAccountKey(),
    accountUrl: "https://ca.test/acct/1",
  });
  assert.ok(api instanceof AcmeClient);
  assert.equal((api as AcmeClient).accountUrl, "https://ca.test/acct/1");
});
