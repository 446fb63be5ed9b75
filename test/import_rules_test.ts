import assert from "node:assert/strict";
import {
  findCycles,
  graphFromInfo,
  type ImportGraph,
  importGraph,
  raftLeaks,
  testCodeIn,
} from "../scripts/import_rules.ts";

const graph = (edges: Record<string, string[]>): ImportGraph =>
  new Map(Object.entries(edges).map(([k, v]) => [k, new Set(v)]));

Deno.test("findCycles() finds each cycle once, as a closed path", () => {
  const g = graph({
    "a.ts": ["b.ts"],
    "b.ts": ["c.ts", "d.ts"],
    "c.ts": ["a.ts"],
    "d.ts": [],
    "e.ts": ["f.ts"],
    "f.ts": ["e.ts"],
    "s.ts": ["s.ts"],
  });
  assert.deepEqual(findCycles(g), [
    ["a.ts", "b.ts", "c.ts", "a.ts"],
    ["e.ts", "f.ts", "e.ts"],
    ["s.ts", "s.ts"],
  ]);
});

Deno.test("findCycles() is empty for a graph without cycles", () => {
  const g = graph({ "a.ts": ["b.ts", "c.ts"], "b.ts": ["c.ts"], "c.ts": [] });
  assert.deepEqual(findCycles(g), []);
});

Deno.test("graphFromInfo() keeps local code and type imports, drops npm and node ones", () => {
  const root = "/repo";
  const g = graphFromInfo({
    modules: [
      {
        specifier: "file:///repo/src/a.ts",
        dependencies: [
          { code: { specifier: "file:///repo/src/b.ts" } },
          { type: { specifier: "file:///repo/src/c.ts" } },
          { code: { specifier: "npm:/hono@4.13.19" } },
          { code: { specifier: "node:net" } },
        ],
      },
      { specifier: "npm:/hono@4.13.19" },
    ],
  }, root);
  assert.deepEqual(g, graph({ "src/a.ts": ["src/b.ts", "src/c.ts"] }));
});

Deno.test("raftLeaks() names raft/ modules that import the rest of the project", () => {
  const g = graph({ "raft/a.ts": ["raft/b.ts", "src/x.ts"], "src/x.ts": ["raft/a.ts"] });
  assert.deepEqual(raftLeaks(g), ["raft/a.ts → src/x.ts"]);
});

Deno.test("testCodeIn() names test modules the entry reaches, with the path", () => {
  const g = graph({
    "src/main.ts": ["src/a.ts"],
    "src/a.ts": ["src/cluster/testing.ts", "src/b.ts"],
    "src/b.ts": ["test/wait.ts"],
    "src/cluster/testing.ts": [],
    "src/a_test.ts": ["src/a.ts"],
  });
  assert.deepEqual(testCodeIn(g, "src/main.ts"), [
    "src/main.ts → src/a.ts → src/b.ts → test/wait.ts",
    "src/main.ts → src/a.ts → src/cluster/testing.ts",
  ]);
  assert.deepEqual(
    testCodeIn(graph({ "src/main.ts": ["src/x.ts"], "src/x.ts": [] }), "src/main.ts"),
    [],
  );
});

Deno.test("the project's modules import each other without cycles; raft/ imports only raft/; the agent no test code", async () => {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const g = await importGraph(root);
  assert.ok(g.has("src/main.ts") && g.has("raft/mod.ts") && g.has("test/harness.ts"));
  assert.deepEqual(findCycles(g), []);
  assert.deepEqual(raftLeaks(g), []);
  assert.deepEqual(testCodeIn(g, "src/main.ts"), []);
});
