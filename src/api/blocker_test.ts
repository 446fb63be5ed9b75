import assert from "node:assert/strict";
import fc from "fast-check";
import type { Change, Instance, Store, Table } from "../store/mod.ts";
import { Blocker, type Watch, watchTouched } from "./blocker.ts";
import { sleep } from "../../test/wait.ts";

/** A change feed the test drives by hand (the Blocker needs only `subscribe`). */
class Feed {
  readonly #subs = new Set<(c: Change) => void>();
  #index = 0;
  subscribe: Store["subscribe"] = (fn) => {
    this.#subs.add(fn);
    return () => this.#subs.delete(fn);
  };
  announce(over: Partial<Change>): void {
    const c: Change = {
      index: ++this.#index,
      tables: new Set(),
      services: new Set(),
      keys: new Set(),
      instances: [],
      nodes: [],
      reset: false,
      ...over,
    };
    for (const fn of this.#subs) fn(c);
  }
}

const instanceDelta = (id: string) => ({ id, before: null, after: null });

/** The watch of waiter `i` of the 10,000 (see the first test). */
function watchOf(i: number): Watch {
  if (i < 4000) return { service: `svc-${i % 1000}` };
  if (i < 7000) return { key: `cfg/${i}` };
  if (i < 9000) return { prefix: `app/${i % 500}/` };
  return { instance: `inst-${i}` };
}

Deno.test("Blocker.wait() with 10,000 waits: a change looks only at the waiters it touches", async () => {
  const feed = new Feed();
  const abort = new AbortController();
  const blocker = new Blocker(feed, { signal: abort.signal });
  const n = 10_000;
  const looked = new Array<number>(n).fill(0);
  const answered = new Array<boolean>(n).fill(false);
  // What the test's changes moved: a waiter's answer changed when its watch's name is here.
  const moved = new Set<string>();
  const waits: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const w = watchOf(i);
    const name = JSON.stringify(w);
    let first = true;
    const done = () => {
      if (!first) looked[i]!++;
      first = false;
      return moved.has(name);
    };
    waits.push(
      blocker.wait(w, done, { waitMs: 600_000 }).then(() => {
        answered[i] = true;
      }),
    );
  }
  assert.equal(blocker.size, n);

  // Nothing changes: no waiter is looked at again (no polling).
  await sleep(30);
  // Changes to what nobody watches.
  feed.announce({
    tables: new Set<Table>(["instances"]),
    services: new Set(["other"]),
    instances: [instanceDelta("other-1")],
  });
  feed.announce({
    tables: new Set<Table>(["kv"]),
    keys: new Set(["elsewhere/x", "app", "app/1", "app/1x/y", "cfg/4000/under", "cfg/1"]),
  });
  feed.announce({
    tables: new Set<Table>(["nodes"]),
    nodes: [{ name: "n9", before: null, after: null }],
  });
  feed.announce({ tables: new Set<Table>(["sessions", "acl", "edge_certs"]) });
  await sleep(0);
  assert.deepEqual(looked.filter((x) => x > 0).length, 0);
  assert.deepEqual(answered.filter((x) => x).length, 0);
  assert.equal(blocker.size, n);

  // Changes to watched things wake exactly their waiters.
  const touch = (w: Watch) => moved.add(JSON.stringify(w));
  touch({ service: "svc-7" });
  feed.announce({
    tables: new Set<Table>(["instances"]),
    services: new Set(["svc-7"]),
    instances: [instanceDelta("svc-7-a")],
  });
  touch({ key: "cfg/4500" });
  touch({ prefix: "app/12/" });
  feed.announce({ tables: new Set<Table>(["kv"]), keys: new Set(["cfg/4500", "app/12/deep/x"]) });
  touch({ instance: "inst-9123" });
  feed.announce({ tables: new Set<Table>(["instances"]), instances: [instanceDelta("inst-9123")] });
  await sleep(0);
  const woken = [7, 1007, 2007, 3007, 4500, 7012, 7512, 8012, 8512, 9123];
  assert.deepEqual(looked.flatMap((x, i) => x > 0 ? [i] : []), woken);
  assert.deepEqual(answered.flatMap((x, i) => x ? [i] : []), woken);
  assert.ok(woken.every((i) => looked[i] === 1));
  assert.equal(blocker.size, n - woken.length);

  abort.abort();
  await Promise.all(waits);
  assert.equal(blocker.size, 0);
});

Deno.test("Blocker.wait() looks at a changed waiter that is not done yet and keeps it waiting", async () => {
  const feed = new Feed();
  const abort = new AbortController();
  const blocker = new Blocker(feed, { signal: abort.signal });
  let looks = 0;
  let answered = false;
  const waiting = blocker.wait({ service: "web" }, () => {
    looks++;
    return looks > 2;
  }, { waitMs: 600_000 }).then(() => answered = true);
  feed.announce({ tables: new Set<Table>(["instances"]), services: new Set(["web"]) });
  await sleep(0);
  assert.equal(answered, false);
  feed.announce({ tables: new Set<Table>(["instances"]), services: new Set(["web"]) });
  await waiting;
  assert.equal(looks, 3);
  assert.equal(blocker.size, 0);
  abort.abort();
});

Deno.test("Blocker.wait() on a reset answers every waiter, whatever done() says", async () => {
  const feed = new Feed();
  const abort = new AbortController();
  const blocker = new Blocker(feed, { signal: abort.signal });
  let looks = 0;
  const watches: Watch[] = [
    { key: "a" },
    { prefix: "b/" },
    { instance: "x" },
    { service: "web" },
    { table: "sessions" },
  ];
  const waits = watches.map((w) =>
    blocker.wait(w, () => {
      looks++;
      return false;
    }, { waitMs: 600_000 })
  );
  looks = 0;
  // A restore: every table, every service present before or after it, no keys, no deltas.
  feed.announce({ tables: new Set<Table>(["kv", "instances"]), services: new Set(), reset: true });
  assert.equal(blocker.size, 0);
  assert.equal(looks, 0);
  await Promise.all(waits);
  abort.abort();
});

Deno.test("Blocker.wait() on a KV change naming no key looks at every KV waiter", async () => {
  const feed = new Feed();
  const abort = new AbortController();
  const blocker = new Blocker(feed, { signal: abort.signal });
  const looked = new Map<string, number>();
  const waits = (["k", "p", "i"] as const).map((kind) => {
    const w: Watch = kind === "k" ? { key: "a" } : kind === "p" ? { prefix: "b/" } : {
      instance: "x",
    };
    let first = true;
    return blocker.wait(w, () => {
      if (!first) looked.set(kind, (looked.get(kind) ?? 0) + 1);
      first = false;
      return false;
    }, { waitMs: 600_000 });
  });
  feed.announce({ tables: new Set<Table>(["kv"]), services: new Set() });
  assert.deepEqual(Object.fromEntries(looked), { k: 1, p: 1 });
  abort.abort();
  await Promise.all(waits);
});

// Small alphabets, so that random watches and changes meet often.
const name = fc.constantFrom("a", "b", "ab", "a/b", "");
const table = fc.constantFrom<Table>("instances", "nodes", "kv", "sessions");
const watch: fc.Arbitrary<Watch> = fc.oneof(
  table.map((t) => ({ table: t })),
  name.map((s) => ({ service: s })),
  name.map((s) => ({ instance: s })),
  name.map((s) => ({ node: s })),
  name.map((s) => ({ key: s })),
  name.map((s) => ({ prefix: s })),
  fc.constant({ all: true as const }),
  fc.constantFrom("on-reset", "never", "undefined").map((topic) => ({ topic })),
);
/** Topics of the property test: "undefined" is named by watches but not defined. */
const TOPICS = { "on-reset": (c: Change) => c.reset, never: () => false };
const change = fc.record({
  tables: fc.uniqueArray(table, { maxLength: 3 }),
  services: fc.uniqueArray(name, { maxLength: 2 }),
  keys: fc.uniqueArray(name, { maxLength: 2 }),
  instances: fc.uniqueArray(
    fc.record({ id: name, before: fc.option(name), after: fc.option(name) }),
    { maxLength: 2, selector: (d) => d.id },
  ),
  nodes: fc.uniqueArray(name, { maxLength: 2 }),
  reset: fc.boolean(),
});

Deno.test("Blocker looks at exactly the waiters watchTouched() names, for random watches and changes", () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(watch, { minLength: 1, maxLength: 3 }), { maxLength: 12 }),
      fc.array(change, { minLength: 1, maxLength: 4 }),
      (waiters, changes) => {
        const feed = new Feed();
        const abort = new AbortController();
        const blocker = new Blocker(feed, { signal: abort.signal, topics: TOPICS });
        let looked = new Set<number>();
        const started = waiters.map(() => false);
        waiters.forEach((ws, i) => {
          void blocker.wait(ws, () => {
            if (started[i]) looked.add(i);
            started[i] = true;
            return false;
          }, { waitMs: 600_000 });
        });
        let waiting = true;
        for (const ch of changes) {
          looked = new Set();
          const c: Change = {
            index: 1,
            tables: new Set(ch.tables),
            services: new Set(ch.services),
            keys: new Set(ch.keys),
            instances: ch.instances.map((d) => ({
              id: d.id,
              before: d.before === null ? null : { node: d.before } as Instance,
              after: d.after === null ? null : { node: d.after } as Instance,
            })),
            nodes: ch.nodes.map((n) => ({ name: n, before: null, after: null })),
            reset: ch.reset,
          };
          feed.announce(c);
          if (c.reset) {
            // Every waiter answered without a look.
            assert.equal(blocker.size, 0);
            assert.ok(waiters.every((ws) => ws.some((w) => watchTouched(w, c, TOPICS))));
            waiting = false;
          }
          const expected = waiters.flatMap((ws, i) =>
            waiting && ws.some((w) => watchTouched(w, c, TOPICS)) ? [i] : []
          );
          assert.deepEqual([...looked].sort((a, b) => a - b), expected);
        }
        abort.abort();
        assert.equal(blocker.size, 0);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("watchTouched() of a KV prefix or key: keys under the prefix, the key itself, a keyless change", () => {
  const kv = (keys: string[]): Change => ({
    index: 1,
    tables: new Set<Table>(["kv"]),
    services: new Set(),
    keys: new Set(keys),
    instances: [],
    nodes: [],
    reset: false,
  });
  assert.equal(watchTouched({ prefix: "app/" }, kv(["app/x"])), true);
  assert.equal(watchTouched({ prefix: "app/" }, kv(["app"])), false);
  assert.equal(watchTouched({ prefix: "" }, kv(["anything"])), true);
  assert.equal(watchTouched({ key: "app" }, kv(["app/x"])), false);
  assert.equal(watchTouched({ key: "app" }, kv(["app"])), true);
  assert.equal(watchTouched({ key: "app" }, kv([])), true);
  assert.equal(watchTouched({ key: "app" }, { ...kv(["app"]), tables: new Set() }), false);
});
