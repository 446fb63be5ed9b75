import assert from "node:assert/strict";
import type { Change, Instance, InstanceDelta, NodeInfo } from "../store/mod.ts";
import { RouteFeed, type RouteSource } from "./route_feed.ts";
import { spec } from "./_testing.ts";

function row(id: string, over: Partial<Instance> = {}): Instance {
  return { ...spec({ id, port: 80, ...over }), createIndex: 1, modifyIndex: 1 };
}

/** A store stand-in: rows by id, pages in id order, changes announced by hand. */
class FakeSource implements RouteSource {
  readonly rows = new Map<string, Instance>();
  readonly nodeRows: NodeInfo[] = [];
  pagesRead = 0;
  readonly #subs = new Set<(c: Change) => void>();

  instances(): Instance[] {
    return [...this.rows.values()].sort((a, b) => a.id < b.id ? -1 : 1);
  }

  instancesPage(afterId: string, limit: number): Instance[] {
    this.pagesRead++;
    return this.instances().filter((i) => i.id > afterId).slice(0, limit);
  }

  nodes(): NodeInfo[] {
    return this.nodeRows;
  }

  subscribe(fn: (c: Change) => void): () => void {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  }

  /** Sets rows (null: deletes) and announces their deltas. */
  write(rows: readonly (Instance | [string, null])[]): void {
    const deltas: InstanceDelta[] = rows.map((r) => {
      const id = Array.isArray(r) ? r[0] : r.id;
      const after = Array.isArray(r) ? null : r;
      const before = this.rows.get(id) ?? null;
      if (after === null) this.rows.delete(id);
      else this.rows.set(id, after);
      return { id, before, after };
    });
    this.#announce({ instances: deltas, nodes: [], reset: false });
  }

  /** Announces a reset (a snapshot installed: the rows were replaced). */
  reset(): void {
    this.#announce({ instances: [], nodes: [], reset: true });
  }

  #announce(c: Pick<Change, "instances" | "nodes" | "reset">): void {
    const change: Change = {
      index: 0,
      tables: new Set(["instances"]),
      services: new Set(),
      keys: new Set(),
      ...c,
    };
    for (const fn of this.#subs) fn(change);
  }
}

function feedOf(source: FakeSource, sliceSize: number, retryMs?: number) {
  const calls: string[] = [];
  const feed = new RouteFeed({
    source,
    edgeDomain: null,
    sliceSize,
    retryMs,
    targetsChanged: (gone, back) => calls.push(`changed -${gone.join(",")} +${back.join(",")}`),
    targetsReset: (live) => calls.push(`reset ${[...live].length}`),
    tcpChanged: (ports) => calls.push(`tcp ${ports?.join(",") ?? "all"}`),
    log: (line) => calls.push(line),
  });
  return { feed, calls };
}

const ids = (feed: RouteFeed) =>
  feed.table.match("web.test", "/")?.targets.map((t) => t.id).join(",") ?? "none";

Deno.test("RouteFeed.start() builds a store smaller than a page at once", () => {
  const source = new FakeSource();
  for (const id of ["a", "b"]) source.rows.set(id, row(id));
  const { feed, calls } = feedOf(source, 3);
  feed.start();
  assert.equal(ids(feed), "a,b");
  assert.deepEqual(calls, ["reset 2", "tcp all"]);
  feed.close();
});

Deno.test("RouteFeed applies a change's deltas to the table in use and reports target keys and TCP ports", () => {
  const source = new FakeSource();
  source.rows.set("a", row("a"));
  const { feed, calls } = feedOf(source, 100);
  feed.start();
  const table = feed.table;
  calls.length = 0;
  source.write([row("b", { tcpPort: 9000 }), ["a", null]]);
  assert.equal(feed.table, table, "updated in place");
  assert.equal(ids(feed), "b");
  assert.deepEqual(calls, ["changed -a|127.0.0.1|80 +b|127.0.0.1|80", "tcp 9000"]);
  feed.close();
});

Deno.test("RouteFeed builds a big store in pages, serving the old table, then applies what came meanwhile", async () => {
  const source = new FakeSource();
  for (const id of ["a", "b", "c", "d", "e", "f", "g"]) source.rows.set(id, row(id));
  const { feed, calls } = feedOf(source, 3);
  feed.start();
  assert.equal(ids(feed), "none", "the first page alone is not swapped in");
  assert.equal(source.pagesRead, 1);
  source.write([["a", null], row("h")]); // during the build
  assert.equal(ids(feed), "none");
  await feed.settled();
  assert.equal(source.pagesRead, 3);
  assert.equal(ids(feed), "b,c,d,e,f,g,h");
  assert.deepEqual(calls, ["reset 7", "tcp all"]);
  feed.close();
});

Deno.test("RouteFeed starts a build over when a reset comes in during it", async () => {
  const source = new FakeSource();
  for (const id of ["a", "b", "c", "d"]) source.rows.set(id, row(id));
  const { feed, calls } = feedOf(source, 2);
  feed.start();
  source.rows.clear();
  for (const id of ["x", "y", "z"]) source.rows.set(id, row(id));
  source.write([row("w")]); // queued, then dropped with the build it was queued for
  source.reset();
  await feed.settled();
  assert.equal(ids(feed), "w,x,y,z");
  assert.deepEqual(calls, ["reset 4", "tcp all"]);
  feed.close();
});

Deno.test("RouteFeed keeps the old table when a build fails, and tries again later with what came meanwhile", async () => {
  const source = new FakeSource();
  source.rows.set("a", row("a"));
  const { feed, calls } = feedOf(source, 2, 5);
  feed.start();
  for (const id of ["b", "c", "d"]) source.rows.set(id, row(id));
  const read = source.instancesPage.bind(source);
  let failures = 2;
  source.instancesPage = (after, limit) => {
    // The second page, twice: a build that got under way fails, with changes queued.
    if (after !== "" && failures > 0) {
      failures--;
      throw new Error("disk I/O error");
    }
    return read(after, limit);
  };
  source.reset();
  source.write([row("e")]); // queued during the build that fails
  await feed.settled();
  assert.equal(ids(feed), "a");
  assert.equal(
    calls.at(-1),
    "proxy: keeping the old routes, rebuilding failed (trying again in 5 ms): disk I/O error",
  );
  source.write([["a", null]]); // while the next try is due
  assert.equal(ids(feed), "a");
  for (let i = 0; i < 200 && ids(feed) === "a"; i++) await new Promise((r) => setTimeout(r, 1));
  await feed.settled();
  assert.ok(
    calls.includes(
      "proxy: keeping the old routes, rebuilding failed (trying again in 10 ms): disk I/O error",
    ),
    "the second wait doubles",
  );
  assert.equal(ids(feed), "b,c,d,e");
  assert.deepEqual(calls.slice(-2), ["reset 4", "tcp all"]);
  // It follows changes again.
  source.write([row("f")]);
  assert.equal(ids(feed), "b,c,d,e,f");
  feed.close();
});
