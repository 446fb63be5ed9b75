import assert from "node:assert/strict";
import { type Command, Store } from "../store/mod.ts";
import { apiInstanceSpec } from "../../test/fixtures.ts";
import { Zone } from "./zone.ts";
import { type ZoneSource, ZoneView } from "./zone_view.ts";

const ZONE = { domain: "berth.", edgeDomain: null, ttl: 0 };

function register(store: Store, id: string, service: string, address = "10.0.0.5"): void {
  const c: Command = {
    type: "register",
    instance: apiInstanceSpec({ id, service, node: "n1", address }),
  };
  const r = store.apply(store.appliedIndex() + 1, c);
  assert.ok(r.ok, r.error);
}

/** A store with node n1 and `count` instances of `service`. */
function storeWith(service: string, count: number): Store {
  const s = Store.open(":memory:");
  s.apply(1, { type: "node.register", name: "n1", address: "192.168.1.1", meta: {} });
  for (let i = 0; i < count; i++) {
    register(s, `${service}-${String(i).padStart(3, "0")}`, service, `10.1.0.${i}`);
  }
  return s;
}

/** The store as a ZoneSource counting the pages read. */
function counted(store: Store): { source: ZoneSource; pages: () => number } {
  let pages = 0;
  const source: ZoneSource = {
    subscribe: (fn) => store.subscribe(fn),
    nodes: () => store.nodes(),
    appliedIndex: () => store.appliedIndex(),
    instancesPage: (after, limit) => {
      pages++;
      return store.instancesPage(after, limit);
    },
  };
  return { source, pages: () => pages };
}

function addresses(z: Zone, service: string): string[] {
  return z.instances(service).map((i) => i.address).sort();
}

function fresh(store: Store): Zone {
  const data = { instances: store.instances(), nodes: store.nodes(), version: 0 };
  return new Zone(data, ZONE);
}

Deno.test("ZoneView applies a change's deltas to the zone in place and names the keys changed", async () => {
  const store = storeWith("web", 3);
  const heard: (string[] | null)[] = [];
  const view = new ZoneView({
    store,
    zone: ZONE,
    onChange: (deps) => heard.push(deps === null ? null : [...deps].sort()),
  });
  await view.start();
  const zone = view.zone;
  heard.length = 0;
  try {
    register(store, "db-1", "db", "10.2.0.1");
    assert.equal(view.zone, zone);
    assert.deepEqual(addresses(zone, "db"), ["10.2.0.1"]);
    assert.deepEqual(heard, [["addr 10.2.0.1", "service db"]]);
    assert.equal(zone.version, store.appliedIndex());
    // A check result that changes no answer changes no key.
    store.apply(store.appliedIndex() + 1, {
      type: "check",
      id: "db-1",
      status: "passing",
      output: "ok",
    });
    assert.equal(heard.length, 1);
    store.apply(store.appliedIndex() + 1, { type: "node.status", name: "n1", status: "down" });
    assert.deepEqual(addresses(zone, "web"), []);
    // Node answers do not depend on its status: not its key; the name servers' do.
    assert.deepEqual(heard[1], ["service db", "service web", "zone"]);
  } finally {
    view.close();
    store.close();
  }
});

Deno.test("ZoneView rebuilds on a snapshot install in slices; the old zone answers meanwhile and changes are replayed", async () => {
  const dir = await Deno.makeTempDir();
  const leader = storeWith("api", 25);
  const store = storeWith("web", 3);
  const { source, pages } = counted(store);
  let rebuilt = 0;
  const view = new ZoneView({
    store: source,
    zone: ZONE,
    sliceInstances: 4,
    onChange: (deps) => deps === null && rebuilt++,
  });
  try {
    await view.start();
    const old = view.zone;
    rebuilt = 0;
    const read = pages();
    await leader.writeSnapshotFile(`${dir}/snap`, "raft");
    store.installSnapshotFile(`${dir}/snap`);
    await Promise.resolve(); // the rebuild's first slice
    assert.equal(view.zone, old);
    assert.deepEqual(addresses(view.zone, "api"), []);
    // One before the slices read so far, one after: both replayed on the new zone; then more
    // than a slice of rows, replayed in slices.
    register(store, "aaa", "api", "10.9.0.1");
    store.apply(store.appliedIndex() + 1, { type: "deregister", id: "api-024" });
    for (let i = 0; i < 6; i++) register(store, `aa-${i}`, "late", `10.8.0.${i}`);
    assert.equal(view.zone, old, "a delta during the rebuild went to the old zone");
    for (let i = 0; i < 100 && view.zone === old; i++) {
      await new Promise((r) => setTimeout(r, 0));
    }
    assert.notEqual(view.zone, old, "the rebuild did not finish");
    assert.equal(rebuilt, 1);
    assert.ok(pages() - read >= 7, `${pages() - read} pages for 25 instances`);
    assert.deepEqual(addresses(view.zone, "api"), addresses(fresh(store), "api"));
    assert.equal(view.zone.instances("api").length, 25);
    assert.equal(view.zone.instances("late").length, 6);
    assert.deepEqual(addresses(view.zone, "web"), []);
    assert.equal(view.zone.version, store.appliedIndex());
  } finally {
    view.close();
    store.close();
    leader.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ZoneView starts a rebuild over when another reset comes during it", async () => {
  const dir = await Deno.makeTempDir();
  const first = storeWith("api", 20);
  const second = storeWith("db", 20);
  const store = storeWith("web", 1);
  const view = new ZoneView({ store, zone: ZONE, sliceInstances: 4 });
  try {
    await view.start();
    await first.writeSnapshotFile(`${dir}/first`, "raft");
    await second.writeSnapshotFile(`${dir}/second`, "raft");
    const old = view.zone;
    store.installSnapshotFile(`${dir}/first`);
    await new Promise((r) => setTimeout(r, 0));
    store.installSnapshotFile(`${dir}/second`);
    for (let i = 0; i < 100 && view.zone.instances("db").length === 0; i++) {
      await new Promise((r) => setTimeout(r, 0));
    }
    assert.notEqual(view.zone, old);
    assert.deepEqual(view.zone.serviceNames(), ["db"]);
    assert.equal(view.zone.instances("db").length, 20);
  } finally {
    view.close();
    for (const s of [store, first, second]) s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ZoneView with a filter rebuilds when the ACL tables change, and close() stops listening", async () => {
  const store = storeWith("web", 2);
  register(store, "db-1", "db", "10.2.0.1");
  let hidden = "";
  const view = new ZoneView({
    store,
    zone: ZONE,
    visible: () => ({ service: (s) => s !== hidden, node: () => true }),
  });
  try {
    await view.start();
    assert.deepEqual(view.zone.serviceNames(), ["db", "web"]);
    hidden = "db";
    const r = store.apply(store.appliedIndex() + 1, {
      type: "acl.policy.set",
      policy: {
        id: "11111111-1111-4111-8111-111111111111",
        name: "dns",
        description: "",
        rules: "",
        datacenters: [],
      },
    });
    assert.ok(r.ok, r.error);
    await Promise.resolve();
    assert.deepEqual(view.zone.serviceNames(), ["web"]);
    view.close();
    register(store, "api-1", "api");
    await Promise.resolve();
    assert.deepEqual(view.zone.serviceNames(), ["web"]);
  } finally {
    view.close();
    store.close();
  }
});

Deno.test("ZoneView starts a rebuild over when more rows than queueRowsMax queue during it", async () => {
  const dir = await Deno.makeTempDir();
  const leader = storeWith("api", 20);
  const store = storeWith("web", 1);
  const { source, pages } = counted(store);
  const view = new ZoneView({ store: source, zone: ZONE, sliceInstances: 4, queueRowsMax: 10 });
  try {
    await view.start();
    await leader.writeSnapshotFile(`${dir}/snap`, "raft");
    store.installSnapshotFile(`${dir}/snap`);
    await Promise.resolve();
    const read = pages();
    for (let i = 0; i < 6; i++) register(store, `late-${i}`, "late", `10.8.0.${i}`);
    await Promise.resolve();
    assert.equal(pages(), read + 1, "the rebuild did not start over"); // its first slice again
    for (let i = 0; i < 100 && view.zone.instances("api").length === 0; i++) {
      await new Promise((r) => setTimeout(r, 0));
    }
    assert.equal(view.zone.instances("api").length, 20);
    assert.equal(view.zone.instances("late").length, 6);
  } finally {
    view.close();
    store.close();
    leader.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** `acl.policy.set` of a policy nobody links (any ACL write), described `description`. */
function aclWrite(store: Store, description: string): void {
  const r = store.apply(store.appliedIndex() + 1, {
    type: "acl.policy.set",
    policy: {
      id: "22222222-2222-4222-8222-222222222222",
      name: "unrelated",
      description,
      rules: "",
      datacenters: [],
    },
  });
  assert.ok(r.ok, r.error);
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("ZoneView with a keyed filter rebuilds on an ACL change only when the filter's key changed", async () => {
  const store = storeWith("web", 2);
  register(store, "db-1", "db", "10.2.0.1");
  const { source, pages } = counted(store);
  let hidden = "";
  const view = new ZoneView({
    store: source,
    zone: ZONE,
    visible: () => ({ service: (s) => s !== hidden, node: () => true, key: hidden }),
  });
  try {
    await view.start();
    const zone = view.zone;
    const read = pages();
    aclWrite(store, "one");
    aclWrite(store, "two");
    await tick();
    assert.equal(pages(), read, "an ACL write that keeps the key read the store");
    assert.equal(view.zone, zone);
    register(store, "api-1", "api", "10.3.0.1");
    assert.deepEqual(view.zone.serviceNames(), ["api", "db", "web"]);
    hidden = "db";
    aclWrite(store, "three");
    await tick();
    assert.notEqual(view.zone, zone);
    assert.deepEqual(view.zone.serviceNames(), ["api", "web"]);
  } finally {
    view.close();
    store.close();
  }
});

Deno.test("ZoneView under ACL writes faster than a rebuild: start() resolves, changes reach the zone, the last filter wins", async () => {
  const store = storeWith("web", 40);
  let n = 0;
  let hidden = "";
  // Every ACL write changes the key: each one asks for a rebuild.
  const view = new ZoneView({
    store,
    zone: ZONE,
    sliceInstances: 4, // a rebuild of 40 instances takes about ten turns of the loop
    visible: () => ({ service: (s) => s !== hidden, node: () => true, key: `${n}/${hidden}` }),
  });
  let started = false;
  const start = view.start().then(() => started = true);
  try {
    const churn = () => {
      n++;
      aclWrite(store, String(n));
    };
    churn();
    register(store, "api-1", "api", "10.2.0.1");
    for (let t = 0; t < 400; t++) {
      if (t % 5 === 0) churn();
      await tick();
    }
    assert.equal(started, true, "start() still waits");
    assert.equal(view.zone.instances("api").length, 1, "api-1 never reached the zone");
    assert.ok(view.zone.version > 41, `zone at index ${view.zone.version}`);
    hidden = "web";
    churn();
    for (let t = 0; t < 100 && (view.rebuilding || view.zone.serviceNames().length > 1); t++) {
      await tick();
    }
    assert.deepEqual(view.zone.serviceNames(), ["api"]);
    assert.equal(view.zone.version, store.appliedIndex());
  } finally {
    view.close();
    await start;
    store.close();
  }
});
