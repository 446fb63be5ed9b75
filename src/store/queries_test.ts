import assert from "node:assert/strict";
import { Store } from "./mod.ts";
import { instanceSpec } from "../../test/fixtures.ts";

const enc = new TextEncoder();

Deno.test("members() lists voters and learners by id, one without a row as node-<id>", () => {
  const s = Store.open(":memory:");
  s.apply(1, {
    type: "conf",
    voters: [3, 1],
    learners: [2],
    upsert: { id: 2, name: "b", address: "127.0.0.2:8300" },
  });
  assert.deepEqual(s.members().map((m) => [m.id, m.name, m.address, m.role]), [
    [1, "node-1", "", "voter"],
    [2, "b", "127.0.0.2:8300", "learner"],
    [3, "node-3", "", "voter"],
  ]);
});

Deno.test("services() gives each service the sorted union of its instances' tags", () => {
  const s = Store.open(":memory:");
  const reg = (id: string, service: string, tags: string[]) => ({
    type: "register",
    instance: instanceSpec({ id, service, tags }),
  });
  s.apply(1, reg("a", "web", ["v2", "blue"]));
  s.apply(2, reg("b", "web", ["v1", "blue"]));
  s.apply(3, reg("c", "db", []));
  assert.deepEqual(s.services(), new Map([["db", []], ["web", ["blue", "v1", "v2"]]]));
});

Deno.test("kvList() and kvKeys() match the prefix literally (no LIKE wildcards)", () => {
  const s = Store.open(":memory:");
  for (const [i, k] of ["a%1", "a%2", "ab", "a_c", "b"].entries()) {
    s.apply(i + 1, { type: "kv.put", key: k, value: enc.encode(k), flags: 0 });
  }
  assert.deepEqual(s.kvKeys("a%"), ["a%1", "a%2"]);
  assert.deepEqual(s.kvList("a_").map((e) => e.key), ["a_c"]);
  assert.deepEqual(s.kvKeys(""), ["a%1", "a%2", "a_c", "ab", "b"]);
});
