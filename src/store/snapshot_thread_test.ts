import assert from "node:assert/strict";
import { type Change, Store } from "./mod.ts";
import { apiInstanceSpec } from "../../test/fixtures.ts";
import { concatBytes } from "../lib/bytes.ts";

const enc = new TextEncoder();

/** A file store at `path` with `n` instances (one service per 10) and one KV key. */
function loaded(path: string, n: number, node = "n1"): Store {
  const s = Store.open(path, { synchronous: "OFF" });
  let index = s.appliedIndex();
  s.apply(++index, { type: "node.register", name: node, address: "127.0.0.1", meta: {} });
  const batch = [];
  for (let i = 0; i < n; i++) {
    const instance = apiInstanceSpec({ id: `${node}:s${i}:80`, service: `s${i % 10}`, node });
    batch.push({ index: ++index, command: { type: "register", instance } });
  }
  s.applyMany(batch);
  s.apply(++index, { type: "kv.put", key: `from-${node}`, value: enc.encode("1"), flags: 0 });
  return s;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("Store.installSnapshotFileAsync() installs on the snapshot thread and announces one reset after", async () => {
  await withDir(async (dir) => {
    const src = loaded(`${dir}/src.db`, 300);
    const info = await src.writeSnapshotFile(`${dir}/snap`, "raft");
    assert.equal(info.index, src.appliedIndex());
    const s = loaded(`${dir}/s.db`, 5, "old");
    const changes: Change[] = [];
    s.subscribe((c) => changes.push(c));
    const done = s.installSnapshotFileAsync(`${dir}/snap`);
    // Nothing changed when the call returned: the work runs on the other thread.
    assert.equal(s.appliedIndex(), 7);
    assert.equal(changes.length, 0);
    await done;
    assert.equal(s.appliedIndex(), info.index);
    assert.deepEqual(s.instances(), src.instances());
    assert.deepEqual(s.kvKeys(""), ["from-n1"]);
    assert.equal(changes.length, 1);
    const c = changes[0]!;
    assert.equal(c.reset, true);
    assert.equal(c.index, info.index);
    // Services present before (old node's) or after (the snapshot's): s0..s9, announced once.
    assert.deepEqual([...c.services].sort(), Array.from({ length: 10 }, (_, i) => `s${i}`));
    // The built-in ACL policy is there (a snapshot's own or seeded) and applies go on.
    assert.ok(s.aclPolicyByName("global-management") !== undefined);
    s.apply(info.index + 1, { type: "kv.put", key: "next", value: enc.encode("1"), flags: 0 });
    assert.equal(s.kvGet("next")?.value.byteLength, 1);
    src.close();
    s.close();
  });
});

Deno.test("Store.installSnapshotFileAsync() lets reads see the old state until the new one is whole, and refuses applies meanwhile", async () => {
  await withDir(async (dir) => {
    const src = loaded(`${dir}/src.db`, 4000);
    await src.writeSnapshotFile(`${dir}/snap`, "raft");
    const s = loaded(`${dir}/s.db`, 10, "old");
    const oldApplied = s.appliedIndex();
    let pending = true;
    const done = s.installSnapshotFileAsync(`${dir}/snap`).finally(() => pending = false);
    assert.throws(
      () => s.apply(oldApplied + 1, { type: "kv.put", key: "x", value: enc.encode("1"), flags: 0 }),
      /snapshot install is under way/,
    );
    await assert.rejects(s.installSnapshotFileAsync(`${dir}/snap`), /already under way/);
    let oldSeen = 0;
    while (pending) {
      // Either every instance of before or every instance of the snapshot: never a mix.
      const n = s.instances().length;
      assert.ok(n === 10 || n === 4000, `${n} instances`);
      if (n === 10) {
        oldSeen++;
        assert.equal(s.appliedIndex(), oldApplied);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await done;
    assert.ok(oldSeen > 0);
    assert.equal(s.instances().length, 4000);
    assert.equal(s.kvGet("x"), undefined);
    src.close();
    s.close();
  });
});

Deno.test("Store.installSnapshotFileAsync() refuses a truncated, damaged or user snapshot, changing nothing", async (t) => {
  await withDir(async (dir) => {
    const src = loaded(`${dir}/src.db`, 2000);
    await src.writeSnapshotFile(`${dir}/raft`, "raft");
    await src.writeSnapshotFile(`${dir}/user`, "user");
    const whole = await Deno.readFile(`${dir}/raft`);
    const damaged = whole.slice();
    // A row deep in the file: the install has replaced tables by then, and must roll back.
    damaged.fill(0xc1, whole.byteLength - 5000, whole.byteLength - 4000);
    const cases: [string, Uint8Array, RegExp][] = [
      ["truncated", whole.subarray(0, whole.byteLength - 3), /truncated/],
      ["damaged", damaged, /damaged|restore:/],
      ["a user snapshot", await Deno.readFile(`${dir}/user`), /user snapshot/],
      ["missing", new Uint8Array(0), /empty/],
    ];
    const s = loaded(`${dir}/s.db`, 20, "old");
    const before = { instances: s.instances(), kv: s.kvList(""), applied: s.appliedIndex() };
    const changes: Change[] = [];
    s.subscribe((c) => changes.push(c));
    for (const [name, bytes, err] of cases) {
      await t.step(name, async () => {
        await Deno.writeFile(`${dir}/snap`, bytes);
        await assert.rejects(s.installSnapshotFileAsync(`${dir}/snap`), err);
        assert.deepEqual(s.instances(), before.instances);
        assert.deepEqual(s.kvList(""), before.kv);
        assert.equal(s.appliedIndex(), before.applied);
        assert.equal(changes.length, 0);
      });
    }
    // Nothing was left locked: the store applies, and a good file installs.
    s.apply(before.applied + 1, { type: "kv.put", key: "y", value: enc.encode("1"), flags: 0 });
    await s.installSnapshotFileAsync(`${dir}/raft`);
    assert.equal(s.instances().length, 2000);
    src.close();
    s.close();
  });
});

Deno.test("Store.writeSnapshotFile() of a file store on the snapshot thread equals the stream read here", async () => {
  await withDir(async (dir) => {
    const s = loaded(`${dir}/s.db`, 50);
    const info = await s.writeSnapshotFile(`${dir}/snap`, "raft");
    const here = s.snapshotSource("raft");
    const parts: Uint8Array[] = [];
    for (let p = here.next(); p !== null; p = here.next()) parts.push(p);
    assert.deepEqual(
      await Deno.readFile(`${dir}/snap`),
      concatBytes(parts),
    );
    assert.equal(info.index, s.appliedIndex());
    assert.equal((await Deno.stat(`${dir}/snap`)).mode! & 0o777, 0o600);
    await assert.rejects(s.writeSnapshotFile(`${dir}/no/such/dir/snap`, "raft"), /No such file/);
    s.close();
  });
});
