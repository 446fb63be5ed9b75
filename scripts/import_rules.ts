/**
 * The project's import rules, checked on the graph `deno info --json` gives for every `.ts` file
 * in src/, raft/, test/ and scripts/ (type-only imports included):
 *
 * - no import cycles;
 * - `raft/` imports nothing of the project outside `raft/` (the consensus library stays pure);
 * - the agent (everything `src/main.ts` reaches) imports no test code: no `*_test.ts`, no
 *   `testing.ts` or `_testing.ts`, nothing under test/.
 *
 * Run as `deno task imports`; test/import_rules_test.ts runs it with the tests.
 *
 * Usage: deno run -A scripts/import_rules.ts
 *
 * @module
 */

/** Module (path relative to the repository) → modules it imports. */
export type ImportGraph = Map<string, Set<string>>;

const FOLDERS = ["src", "raft", "test", "scripts"];

/** Reads the import graph of every `.ts` file under `folders` of the repository at `root`. */
export async function importGraph(root: string, folders = FOLDERS): Promise<ImportGraph> {
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for await (const e of Deno.readDir(`${root}/${dir}`)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.isFile && path.endsWith(".ts")) files.push(path);
    }
  };
  for (const f of folders) await walk(f);
  const tmp = await Deno.makeTempDir({ prefix: "berth-cycles-" });
  try {
    const rootModule = `${tmp}/root.ts`;
    await Deno.writeTextFile(
      rootModule,
      files.map((f) => `import ${JSON.stringify(new URL(`file://${root}/${f}`).href)};`).join("\n"),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--config", `${root}/deno.json`, rootModule],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`deno info failed: ${new TextDecoder().decode(out.stderr).trim()}`);
    }
    return graphFromInfo(JSON.parse(new TextDecoder().decode(out.stdout)), root);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
}

/** The graph of `deno info --json` output, restricted to files under `root`. */
export function graphFromInfo(info: { modules: InfoModule[] }, root: string): ImportGraph {
  const prefix = new URL(`file://${root}/`).href;
  const local = (s: string | undefined) => s?.startsWith(prefix) ? s.slice(prefix.length) : null;
  const graph: ImportGraph = new Map();
  for (const m of info.modules) {
    const from = local(m.specifier);
    if (from === null) continue;
    const to = new Set<string>();
    for (const d of m.dependencies ?? []) {
      for (const s of [d.code?.specifier, d.type?.specifier]) {
        const target = local(s);
        if (target !== null) to.add(target);
      }
    }
    graph.set(from, to);
  }
  return graph;
}

/**
 * Every import cycle, one per strongly connected component (Tarjan), each as a path that starts
 * and ends at the same module: `["a.ts", "b.ts", "a.ts"]`. Sorted, so output is stable.
 */
export function findCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop()!;; w = stack.pop()!) {
      onStack.delete(w);
      component.push(w);
      if (w === v) break;
    }
    if (component.length > 1 || graph.get(v)?.has(v)) components.push(component);
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  return components.map((c) => cycleThrough(graph, new Set(c))).sort((a, b) =>
    a[0]! < b[0]! ? -1 : 1
  );
}

/** A shortest cycle from the component's first module (by name) back to it. */
function cycleThrough(graph: ImportGraph, component: Set<string>): string[] {
  const start = [...component].sort()[0]!;
  const parent = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (!component.has(w)) continue;
      if (w === start) {
        const path: string[] = [];
        for (let u = v; u !== start; u = parent.get(u)!) path.unshift(u);
        return [start, ...path, start];
      }
      if (!parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  throw new Error(`no cycle through ${start}`); // unreachable for a strongly connected component
}

/** Imports from `raft/` to project modules outside it, as `from → to`. */
export function raftLeaks(graph: ImportGraph): string[] {
  const out: string[] = [];
  for (const [from, tos] of graph) {
    if (!from.startsWith("raft/")) continue;
    for (const to of tos) if (!to.startsWith("raft/")) out.push(`${from} → ${to}`);
  }
  return out.sort();
}

/** Test modules that `entry` reaches, each with the path that reaches it. */
export function testCodeIn(graph: ImportGraph, entry: string): string[] {
  const isTest = (m: string) =>
    m.startsWith("test/") || /(^|\/)(_?testing|[^/]*_test)\.ts$/.test(m);
  const parent = new Map<string, string | null>([[entry, null]]);
  const queue = [entry];
  const out: string[] = [];
  while (queue.length > 0) {
    const v = queue.shift()!;
    if (isTest(v)) {
      const path = [v];
      for (let u = parent.get(v); u != null; u = parent.get(u)) path.unshift(u);
      out.push(path.join(" → "));
      continue;
    }
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (parent.has(w)) continue;
      parent.set(w, v);
      queue.push(w);
    }
  }
  return out.sort();
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const graph = await importGraph(root);
  const cycles = findCycles(graph);
  const leaks = raftLeaks(graph);
  const tests = testCodeIn(graph, "src/main.ts");
  for (const c of cycles) console.error(`import cycle: ${c.join(" → ")}`);
  for (const l of leaks) console.error(`raft/ imports outside raft/: ${l}`);
  for (const t of tests) console.error(`the agent imports test code: ${t}`);
  if (cycles.length > 0 || leaks.length > 0 || tests.length > 0) Deno.exit(1);
  console.log(
    `${graph.size} modules: no import cycles, raft/ imports only raft/, the agent no test code`,
  );
}
