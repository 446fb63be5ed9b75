import assert from "node:assert/strict";
import fc from "fast-check";
import { Store } from "../store/mod.ts";
import { applyAll, ARB_NODES, catalogCommands } from "../store/_catalog_arbitrary.ts";
import { OwnRows } from "./own_rows.ts";
import { storeReader } from "./reconcile.ts";

Deno.test("OwnRows kept by the change feed holds the node's Docker rows the store holds, after random commands", () => {
  fc.assert(
    fc.property(catalogCommands({ maxLength: 50 }), fc.constantFrom(...ARB_NODES), (cmds, node) => {
      const store = Store.open(":memory:");
      const own = new OwnRows(store, node);
      const unsubscribe = store.subscribe((c) => own.apply(c));
      try {
        for (const cmd of cmds) {
          applyAll(store, [cmd]);
          const expected = [...storeReader(store, node).dockerRows()];
          assert.deepEqual([...own.dockerRows()].sort((a, b) => a.id < b.id ? -1 : 1), expected);
          for (const i of expected) {
            assert.deepEqual(
              own.ofContainer(i.containerId!).map((x) => x.id).sort(),
              expected.filter((x) => x.containerId === i.containerId).map((x) => x.id).sort(),
            );
            assert.deepEqual(own.instance(i.id), i);
          }
        }
      } finally {
        unsubscribe();
        store.close();
      }
    }),
    { numRuns: 200 },
  );
});
