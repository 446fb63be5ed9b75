import assert from "node:assert/strict";
import type { Instance } from "../store/mod.ts";
import { type RoutePart, RouteSettings } from "./route_settings.ts";
import { Members } from "./route_member.ts";
import { buildRouteTable, RouteTable } from "./routes.ts";
import { spec } from "./_testing.ts";
import { TEST_ROUTE_INDEX } from "../../test/route_key_fixtures.ts";

function inst(id: string, meta: Record<string, string>, over: Partial<Instance> = {}): Instance {
  return {
    ...spec({ id, port: 8000, service: "web", httpHosts: ["web.test"], meta, ...over }),
    createIndex: 1,
    modifyIndex: 1,
  };
}

Deno.test("RouteSettings.fromMeta() keeps the keys the index knows, sorted; EMPTY when none", () => {
  const s = RouteSettings.fromMeta(
    { version: "1", "berth.test.n": "3", "berth.test.h.B": "b", "berth.test.h.A": "a" },
    TEST_ROUTE_INDEX,
  );
  assert.deepEqual([...s.values], [
    ["berth.test.h.A", "a"],
    ["berth.test.h.B", "b"],
    ["berth.test.n", "3"],
  ]);
  assert.equal(s.get("berth.test.n"), "3");
  assert.equal(s.get("version"), undefined);
  assert.deepEqual(s.family("berth.test.h."), [["berth.test.h.A", "a"], ["berth.test.h.B", "b"]]);
  assert.equal(
    s.key,
    RouteSettings.keyOf({ ...Object.fromEntries(s.values), x: "y" }, TEST_ROUTE_INDEX),
  );
  assert.equal(RouteSettings.fromMeta({ version: "1" }, TEST_ROUTE_INDEX), RouteSettings.EMPTY);
  assert.equal(RouteSettings.keyOf({ version: "1" }, TEST_ROUTE_INDEX), "");
  assert.equal(RouteSettings.fromMeta({ "berth.test.n": "3" }), RouteSettings.EMPTY);
});

Deno.test("RouteSettings.compiled() compiles once per settings object", () => {
  let calls = 0;
  const part: RoutePart<number> = {
    name: "n-plus-one",
    compile(s) {
      calls++;
      return Number(s.get("berth.test.n") ?? "0") + 1;
    },
  };
  const a = RouteSettings.fromMeta({ "berth.test.n": "3" }, TEST_ROUTE_INDEX);
  assert.equal(a.compiled(part), 4);
  assert.equal(a.compiled(part), 4);
  assert.equal(calls, 1);
  const b = RouteSettings.fromMeta({ "berth.test.n": "5" }, TEST_ROUTE_INDEX);
  assert.equal(b.compiled(part), 6);
  assert.equal(calls, 2);
});

Deno.test("Members.make() interns settings: equal settings are one object, other options aside", () => {
  const make = new Members(TEST_ROUTE_INDEX);
  const a = make.make(inst("a", { "berth.test.n": "3", "berth.lb": "p2c" }), undefined);
  const b = make.make(inst("b", { "berth.test.n": "3" }), undefined);
  const c = make.make(inst("c", { "berth.test.n": "4" }), undefined);
  const d = make.make(inst("d", {}), undefined);
  assert.notEqual(a.opts, b.opts);
  assert.equal(a.opts.settings, b.opts.settings);
  assert.notEqual(a.opts.settings, c.opts.settings);
  assert.equal(d.opts.settings, RouteSettings.EMPTY);
  assert.equal(a.opts.settings.get("berth.test.n"), "3");
  for (const m of [a, b, c, d]) make.release(m);
  assert.equal(make.sharedCount, 0);
});

Deno.test("Members.make() a settings change makes a new member; the same settings keep it", () => {
  const make = new Members(TEST_ROUTE_INDEX);
  const a = make.make(inst("a", { "berth.test.n": "3" }), undefined);
  assert.equal(make.make(inst("a", { "berth.test.n": "3", other: "x" }), a), a);
  const a2 = make.make(inst("a", { "berth.test.n": "4" }), a);
  assert.notEqual(a2, a);
  assert.equal(a2.opts.settings.get("berth.test.n"), "4");
});

Deno.test("ServiceRoute.settings are the first member's (id order) that has any", () => {
  const t = buildRouteTable(
    [
      inst("a", {}),
      inst("b", { "berth.test.n": "3" }),
      inst("c", { "berth.test.n": "3" }),
    ],
    [],
    { routeKeys: TEST_ROUTE_INDEX },
  );
  assert.equal(t.services.get("web")!.settings.get("berth.test.n"), "3");
  assert.deepEqual(t.conflicts, [
    "service web: instance a sets no berth.* route settings; using b's",
  ]);
  const none = buildRouteTable([inst("a", {})], [], { routeKeys: TEST_ROUTE_INDEX });
  assert.equal(none.services.get("web")!.settings, RouteSettings.EMPTY);
});

Deno.test("ServiceRoute.settings: a member with other settings gives one conflict note", () => {
  const t = buildRouteTable(
    [
      inst("b", { "berth.test.n": "3" }),
      inst("c", { "berth.test.n": "4" }),
      inst("d", { "berth.test.n": "4" }),
      inst("e", { "berth.test.n": "3" }),
    ],
    [],
    { routeKeys: TEST_ROUTE_INDEX },
  );
  assert.equal(t.services.get("web")!.settings.get("berth.test.n"), "3");
  assert.deepEqual(t.conflicts, [
    "service web: instance c sets other berth.* route settings than b (berth.test.n); using b's",
  ]);
});

Deno.test("RouteTable.apply() a member's settings going away hands the route the next one's", () => {
  const t = new RouteTable({ routeKeys: TEST_ROUTE_INDEX });
  t.load([inst("b", { "berth.test.n": "3" }), inst("c", { "berth.test.n": "4" })], []);
  t.loaded();
  assert.equal(t.services.get("web")!.settings.get("berth.test.n"), "3");
  const before = inst("b", { "berth.test.n": "3" });
  const changes = t.apply(
    [{ id: "b", before, after: { ...before, meta: {} } }],
    [],
  );
  assert.equal(t.services.get("web")!.settings.get("berth.test.n"), "4");
  const bare = "service web: instance b sets no berth.* route settings; using c's";
  assert.deepEqual(changes.conflicts, [bare]);
  assert.deepEqual(t.conflicts, [bare]);
});

Deno.test("ServiceRoute.settings are the first served member's: not a critical, weight-0 or down-node one's", () => {
  const critical = { checks: [{ id: "c", name: "c", status: "critical" as const, output: "" }] };
  for (
    const [why, old, nodes] of [
      ["critical", inst("a", { "berth.test.n": "1" }, critical as Partial<Instance>), []],
      ["weight 0", inst("a", { "berth.test.n": "1" }, { weight: 0 }), []],
      [
        "its node down",
        inst("a", { "berth.test.n": "1" }, { node: "n9" }),
        [{
          name: "n9",
          address: "10.0.0.9",
          status: "down" as const,
          meta: {},
          createIndex: 1,
          modifyIndex: 1,
        }],
      ],
    ] as const
  ) {
    const t = buildRouteTable(
      [old, inst("b", { "berth.test.n": "2" }), inst("c", {})],
      [...nodes],
      { routeKeys: TEST_ROUTE_INDEX },
    );
    assert.equal(t.services.get("web")!.settings.get("berth.test.n"), "2", why);
    assert.deepEqual(t.conflicts, [
      "service web: instance a sets other berth.* route settings than b (berth.test.n); " +
      "using b's (it is not served)",
      "service web: instance c sets no berth.* route settings; using b's",
    ], why);
  }
  // No served member has settings: the first member's that has any.
  const t = buildRouteTable(
    [inst("a", { "berth.test.n": "1" }, { weight: 0 }), inst("b", {})],
    [],
    { routeKeys: TEST_ROUTE_INDEX },
  );
  assert.equal(t.services.get("web")!.settings.get("berth.test.n"), "1");
});

Deno.test("ServiceRoute.settings: an unserved member's other allow list does not lock the route", () => {
  const t = buildRouteTable(
    [
      inst("a", { "berth.http.allow": "192.168.0.0/16" }, { weight: 0 }),
      inst("b", { "berth.http.allow": "10.0.0.0/8" }),
    ],
    [],
  );
  assert.equal(t.services.get("web")!.settings.get("berth.http.allow"), "10.0.0.0/8");
});

Deno.test("ServiceRoute.settings: instances that disagree on allow or auth.basic fail closed (none), loudly", () => {
  const t = buildRouteTable(
    [
      inst("web-a", { "berth.http.timeout": "5s" }),
      inst("web-b", { "berth.http.timeout": "5s", "berth.http.allow": "10.0.0.0/8" }),
    ],
    [],
  );
  const s = t.services.get("web")!.settings;
  assert.equal(s.get("berth.http.allow"), "none", "not web-a's (no allow list): nobody");
  assert.equal(s.get("berth.http.timeout"), "5s");
  assert.deepEqual(t.conflicts, [
    "service web: instance web-b sets other berth.* route settings than web-a " +
    "(berth.http.allow); using web-a's",
    "service web: its instances set berth.http.allow differently; nobody is let in (none) " +
    "until they agree",
  ]);
  const same = buildRouteTable(
    [
      inst("web-a", { "berth.http.allow": "10.0.0.0/8", "berth.http.timeout": "5s" }),
      inst("web-b", { "berth.http.allow": "10.0.0.0/8", "berth.http.timeout": "9s" }),
    ],
    [],
  );
  assert.equal(same.services.get("web")!.settings.get("berth.http.allow"), "10.0.0.0/8");
  assert.equal(same.conflicts.length, 1, "only the timeout differs: the first's, one note");
});

Deno.test("RouteTable.apply() the first member turning critical hands the route the next one's settings", () => {
  const t = new RouteTable({ routeKeys: TEST_ROUTE_INDEX });
  const a = inst("a", { "berth.test.n": "1" });
  t.load([a, inst("b", { "berth.test.n": "2" })], []);
  t.loaded();
  assert.equal(t.services.get("web")!.settings.get("berth.test.n"), "1");
  const sick = {
    ...a,
    checks: [{ id: "c", name: "c", status: "critical", output: "" }],
  } as unknown as Instance;
  t.apply([{ id: "a", before: a, after: sick }], []);
  assert.equal(t.services.get("web")!.settings.get("berth.test.n"), "2");
  t.apply([{ id: "a", before: sick, after: a }], []);
  assert.equal(t.services.get("web")!.settings.get("berth.test.n"), "1");
});
