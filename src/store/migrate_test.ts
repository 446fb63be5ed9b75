import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { pack, unpack } from "msgpackr";
import { instanceHealth, type InstanceSpec, legacySnapshotStream, Store } from "./mod.ts";
import { isLegacyInstance, legacyInstance } from "./migrate.ts";

/**
 * A snapshot taken by berth with schema 1 (one status/output per instance), made by that
 * version's Store from nodes n1, n2 and the instances listed in EXPECTED.
 */
const SCHEMA1_SNAPSHOT = Deno.readFileSync(
  new URL("./testdata/schema1_snapshot.msgpack", import.meta.url),
);

/** What each schema-1 row becomes: its sources, and the health every view derives. */
const EXPECTED: Record<
  string,
  Pick<InstanceSpec, "docker" | "checkResult"> & { status: string; output: string }
> = {
  "n1:plain:80": {
    docker: { state: "running", detail: "" },
    checkResult: null,
    status: "passing",
    output: "",
  },
  "n1:paused:80": {
    docker: { state: "paused", detail: "" },
    checkResult: null,
    status: "critical",
    output: "container paused",
  },
  "n1:sick:80": {
    docker: { state: "unhealthy", detail: "exit 1" },
    checkResult: null,
    status: "critical",
    output: "docker health: unhealthy (exit 1)",
  },
  "n1:await:80": {
    docker: { state: "running", detail: "" },
    checkResult: null,
    status: "critical",
    output: "awaiting first check",
  },
  "n1:checked:80": {
    docker: { state: "running", detail: "" },
    checkResult: { status: "passing", output: "HTTP GET /health: 200 OK" },
    status: "passing",
    output: "HTTP GET /health: 200 OK",
  },
  "n1:stopping:80": {
    docker: { state: "stopping", detail: "" },
    checkResult: null,
    status: "critical",
    output: "container being stopped",
  },
  "api-plain": { docker: null, checkResult: null, status: "passing", output: "" },
  "api-reported": {
    docker: null,
    checkResult: { status: "warning", output: "disk 91%" },
    status: "warning",
    output: "disk 91%",
  },
  "api-checked": {
    docker: null,
    checkResult: { status: "critical", output: "HTTP GET /health: 500 Internal Server Error" },
    status: "critical",
    output: "HTTP GET /health: 500 Internal Server Error",
  },
};

function assertMigrated(s: Store): void {
  const got = Object.fromEntries(
    s.instances().map((i) => {
      const h = instanceHealth(i, s.node(i.node)?.status);
      return [i.id, {
        docker: i.docker,
        checkResult: i.checkResult,
        status: h.status,
        output: h.output,
      }];
    }),
  );
  assert.deepEqual(got, EXPECTED);
}

/** Restores a stream through the restore commands, one chunk. */
function restoreStream(s: Store, bytes: Uint8Array): void {
  let i = s.appliedIndex() + 1;
  s.apply(i++, { type: "restore.begin", id: "r" });
  assert.deepEqual(s.apply(i++, { type: "restore.chunk", id: "r", seq: 0, data: bytes }), {
    ok: true,
  });
  const r = s.apply(i, { type: "restore.commit", id: "r", chunks: 1, bytes: bytes.byteLength });
  assert.deepEqual(r, { ok: true });
}

Deno.test("legacySnapshotStream() turns a schema-1 snapshot into one the restore commands apply, health split into its sources", () => {
  const s = Store.open(":memory:");
  restoreStream(s, legacySnapshotStream(SCHEMA1_SNAPSHOT));
  assertMigrated(s);
  // Migrated rows are ordinary rows: the sources' commands apply to them.
  assert.deepEqual(
    s.apply(s.appliedIndex() + 1, {
      type: "docker",
      id: "n1:paused:80",
      state: "running",
      detail: "",
    }),
    { ok: true },
  );
  assert.equal(instanceHealth(s.instance("n1:paused:80")!, "alive").status, "passing");
  s.close();
});

Deno.test("legacySnapshotStream() refuses what is not an old-format snapshot", () => {
  assert.throws(() => legacySnapshotStream(new Uint8Array([0x81, 0xc1])), /not a berth store/);
  assert.throws(
    () => legacySnapshotStream(pack({ format: "berth-store-snapshot", schema: 9 })),
    /schema this berth reads/,
  );
});

Deno.test("Store.open() migrates a schema-1 store file in place", () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/store.db`;
  try {
    // A schema-1 file: the schema-1 snapshot's rows written as that version stored them.
    const snap = unpack(SCHEMA1_SNAPSHOT) as Record<string, Record<string, unknown>[]>;
    Store.open(path).close();
    const db = new DatabaseSync(path);
    db.exec("UPDATE meta SET value=1 WHERE key='schema'");
    for (const r of snap.instances!) {
      db.prepare("INSERT INTO instances VALUES (?, ?, ?, ?, ?, ?)").run(
        r.id as string,
        r.service as string,
        r.node as string,
        r.data as string,
        r.create_index as number,
        r.modify_index as number,
      );
    }
    for (const r of snap.nodes!) {
      db.prepare("INSERT INTO nodes VALUES (?, ?, ?, ?)").run(
        r.name as string,
        r.data as string,
        r.create_index as number,
        r.modify_index as number,
      );
    }
    db.close();

    const s = Store.open(path);
    assertMigrated(s);
    s.close();
    const check = new DatabaseSync(path);
    const schema = check.prepare("SELECT value FROM meta WHERE key='schema'").get();
    assert.equal(Number((schema as { value: number }).value), 2);
    check.close();
    // Opening again finds nothing left to migrate.
    const again = Store.open(path);
    assertMigrated(again);
    again.close();
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Store.open() refuses a store file of an unknown schema with one line", () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/store.db`;
  try {
    Store.open(path).close();
    const db = new DatabaseSync(path);
    db.exec("UPDATE meta SET value=9 WHERE key='schema'");
    db.close();
    assert.throws(() => Store.open(path), /has schema 9, this berth reads 1 and 2/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("legacyInstance() maps an old register command's status and output", async (t) => {
  const base = { id: "x", service: "web", node: "n1", address: "10.0.0.1", port: 80 };
  const check = { http: "/h", intervalMs: 1000, timeoutMs: 100 };
  const cases: [string, Record<string, unknown>, unknown, unknown][] = [
    [
      "Docker, restarting",
      {
        containerId: "c",
        check: null,
        status: "critical",
        output: "container restarting",
      },
      { state: "restarting", detail: "" },
      null,
    ],
    [
      "Docker, HEALTHCHECK starting with a check",
      {
        containerId: "c",
        check,
        status: "critical",
        output: "docker health: starting",
      },
      { state: "starting", detail: "" },
      null,
    ],
    [
      "Docker, unhealthy without detail",
      {
        containerId: "c",
        check: null,
        status: "critical",
        output: "docker health: unhealthy",
      },
      { state: "unhealthy", detail: "" },
      null,
    ],
    [
      "Docker, failing check",
      {
        containerId: "c",
        check,
        status: "critical",
        output: "TCP connect 10.0.0.1:80: connection refused",
      },
      { state: "running", detail: "" },
      {
        status: "critical",
        output: "TCP connect 10.0.0.1:80: connection refused",
      },
    ],
    [
      "API, awaiting its check",
      {
        containerId: null,
        check,
        status: "critical",
        output: "awaiting first check",
      },
      null,
      null,
    ],
    ["API, no status given", { containerId: null, check: null }, null, null],
  ];
  for (const [name, fields, docker, checkResult] of cases) {
    await t.step(name, () => {
      const o = { ...base, ...fields };
      assert.equal(isLegacyInstance(o), "status" in o || "output" in o);
      const m = legacyInstance(o);
      assert.deepEqual([m.docker, m.checkResult], [docker, checkResult]);
      assert.equal("status" in m || "output" in m, false);
    });
  }
  await t.step("an old register command applies through validation", () => {
    const s = Store.open(":memory:");
    const r = s.apply(1, {
      type: "register",
      instance: {
        ...base,
        containerId: "c",
        check: null,
        status: "critical",
        output: "container paused",
      },
    });
    assert.deepEqual(r, { ok: true });
    assert.deepEqual(s.instance("x")?.docker, { state: "paused", detail: "" });
    s.close();
  });
});
