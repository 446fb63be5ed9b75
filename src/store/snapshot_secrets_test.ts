import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import {
  type ApplyResult,
  SECRET_TABLES,
  SNAPSHOT_CHUNK_BYTES,
  SnapshotDecoder,
  type SnapshotFrame,
  Store,
  TABLE_CLASSES,
  tableClass,
  USER_TABLES,
} from "./mod.ts";
import { encodeFrame, encodeHeader, SNAPSHOT_COLUMNS } from "./snapshot_format.ts";
import { concatBytes } from "../lib/bytes.ts";

const enc = new TextEncoder();
const T1 = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const T2 = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
const hash = (s: string) => createHash("sha256").update(s).digest("hex");
/** A stand-in for sealWithPassphrase: reversible, and no plain byte survives it. */
const xor = (b: Uint8Array) => b.map((x) => x ^ 0x5a);

function withToken(s: Store, accessor: string, secret: string, key: string): void {
  let i = s.appliedIndex() + 1;
  s.apply(i++, { type: "kv.put", key, value: enc.encode(`value of ${key}`), flags: 0 });
  s.apply(i, {
    type: "acl.token.set",
    token: {
      accessorId: accessor,
      secretHash: hash(secret),
      description: `token ${accessor}`,
      policies: [],
      local: false,
      createTimeMs: 1,
    },
  });
}

function streamOf(s: Store, seal?: (b: Uint8Array) => Uint8Array): Uint8Array {
  const src = s.snapshotSource("user", { seal });
  const parts: Uint8Array[] = [];
  for (let p = src.next(); p !== null; p = src.next()) parts.push(p);
  return concatBytes(parts);
}

function framesOf(bytes: Uint8Array): SnapshotFrame[] {
  const d = new SnapshotDecoder();
  const out = d.push(bytes);
  d.finish();
  return out;
}

function tablesIn(frames: SnapshotFrame[]): string[] {
  return [...new Set(frames.flatMap((f) => "t" in f ? [f.t] : []))];
}

function restore(s: Store, bytes: Uint8Array, acl?: true): ApplyResult {
  let index = s.appliedIndex() + 1;
  s.apply(index++, { type: "restore.begin", id: "r1" });
  let seq = 0;
  for (let off = 0; off < bytes.byteLength; off += SNAPSHOT_CHUNK_BYTES, seq++) {
    const data = bytes.subarray(off, off + SNAPSHOT_CHUNK_BYTES);
    const r = s.apply(index++, { type: "restore.chunk", id: "r1", seq, data });
    if (!r.ok) return r;
  }
  return s.apply(index, {
    type: "restore.commit",
    id: "r1",
    chunks: seq,
    bytes: bytes.byteLength,
    ...(acl ? { acl } : {}),
  });
}

Deno.test("TABLE_CLASSES classifies every table of the store; user tables are exactly USER_TABLES", () => {
  const path = `${Deno.makeTempDirSync()}/store.db`;
  Store.open(path).close();
  const db = new DatabaseSync(path);
  const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type='table'").all())
    .map((r) => String(r.name));
  db.close();
  Deno.removeSync(path.replace(/\/store\.db$/, ""), { recursive: true });
  const unclassified = [...tables, ...Object.keys(SNAPSHOT_COLUMNS)]
    .filter((t) => tableClass(t) === undefined);
  assert.deepEqual(unclassified, [], "classify these tables in store/table_classes.ts");
  const user = Object.entries(TABLE_CLASSES).filter(([, c]) => c === "user").map(([t]) => t);
  assert.deepEqual(user.sort(), [...USER_TABLES].sort());
  // Any table with a column that smells of a secret must not travel in the clear.
  for (const t of tables) {
    const cols = Object.keys(SNAPSHOT_COLUMNS[t] ?? {});
    if (cols.some((c) => /secret|hash|private|pem|passphrase/.test(c))) {
      assert.notEqual(tableClass(t), "user", `${t} has a secret-like column`);
    }
  }
  assert.ok(SECRET_TABLES.includes("acl_tokens") && SECRET_TABLES.includes("pki"));
});

Deno.test("Store user snapshot leaves the secret tables out; with seal carries them sealed", () => {
  const s = Store.open(":memory:");
  withToken(s, T1, "secret-one", "k1");
  const plain = streamOf(s);
  assert.deepEqual(tablesIn(framesOf(plain)), ["kv"]);
  assert.ok(!framesOf(plain).some((f) => "sealed" in f));

  const sealed = streamOf(s, xor);
  const frames = framesOf(sealed);
  assert.deepEqual(tablesIn(frames), ["kv"]);
  assert.ok("sealed" in frames[0]!, "the sealed section comes first");
  const inner = xor(concatBytes(frames.flatMap((f) => "sealed" in f ? [f.sealed] : [])));
  const dec = new SnapshotDecoder();
  const innerFrames = dec.push(inner);
  dec.finish();
  assert.equal(dec.header?.kind, "secrets");
  assert.deepEqual(tablesIn(innerFrames), ["acl_policies", "acl_tokens"]);
  const hashes = innerFrames.flatMap((f) => "t" in f && f.t === "acl_tokens" ? f.rows : [])
    .map((r) => r.secret_hash);
  assert.ok(hashes.includes(hash("secret-one")));
  // Nothing of the token is readable in the sealed snapshot.
  const text = new TextDecoder("latin1").decode(sealed);
  assert.ok(!text.includes(hash("secret-one")) && !text.includes(T1));
  s.close();
});

Deno.test("Store restore.commit replaces the ACL tables only with acl, from staged rows", async (t) => {
  const source = Store.open(":memory:");
  withToken(source, T1, "secret-one", "k1");
  const inner = (() => {
    const frames = framesOf(streamOf(source, xor));
    return xor(concatBytes(frames.flatMap((f) => "sealed" in f ? [f.sealed] : [])));
  })();
  // What the member streaming a restore sends on once it opened the sealed section: the user
  // frames and the ACL frames in the clear (api/snapshot_secrets.ts).
  const dec = new SnapshotDecoder();
  const aclFrames = dec.push(inner).filter((f) => "t" in f);
  const userFrames = framesOf(streamOf(source)).filter((f) => "t" in f);
  const rows = [...aclFrames, ...userFrames].reduce(
    (n, f) => n + ("rows" in f ? f.rows.length : 0),
    0,
  );
  const opened = concatBytes([
    encodeHeader({ kind: "user", index: 9 }),
    ...[...aclFrames, ...userFrames].map((f) => encodeFrame(f)),
    encodeFrame({ end: true, rows }),
  ]);

  await t.step("without acl: the target keeps its own tokens", () => {
    const target = Store.open(":memory:");
    withToken(target, T2, "secret-two", "k2");
    assert.deepEqual(restore(target, opened), { ok: true });
    assert.ok(target.aclToken(T2) !== undefined && target.aclToken(T1) === undefined);
    assert.deepEqual(target.kvKeys(""), ["k1"], "the user tables were restored");
    target.close();
  });
  await t.step("with acl: the snapshot's tokens replace the target's", () => {
    const target = Store.open(":memory:");
    withToken(target, T2, "secret-two", "k2");
    assert.deepEqual(restore(target, opened, true), { ok: true });
    assert.ok(target.aclToken(T1) !== undefined && target.aclToken(T2) === undefined);
    assert.ok(target.aclPolicies().some((p) => p.name === "global-management"));
    target.close();
  });
  await t.step(
    "with acl: a bootstrapped target stays bootstrapped without its management token",
    () => {
      const target = Store.open(":memory:");
      const boot = (accessorId: string, secret: string) =>
        target.apply(target.appliedIndex() + 1, {
          type: "acl.bootstrap",
          token: {
            accessorId,
            secretHash: hash(secret),
            description: "b",
            policies: [],
            local: false,
            createTimeMs: 1,
          },
        });
      assert.deepEqual(boot(T2, "secret-two"), { ok: true });
      assert.deepEqual(restore(target, opened, true), { ok: true });
      assert.equal(target.aclToken(T2), undefined, "the restore replaced the management token");
      assert.deepEqual(boot("cccccccc-cccc-4ccc-8ccc-cccccccccccc", "secret-three"), {
        ok: false,
        error: "ACL bootstrap no longer allowed",
      });
      target.close();
    },
  );
  await t.step("with acl but no ACL rows staged: refused, nothing changed", () => {
    const target = Store.open(":memory:");
    withToken(target, T2, "secret-two", "k2");
    const r = restore(target, streamOf(source), true);
    assert.deepEqual(r, {
      ok: false,
      error: "restore: the sealed section carried no ACL tokens; nothing restored",
    });
    assert.ok(target.aclToken(T2) !== undefined);
    target.close();
  });
  source.close();
});

Deno.test("Store.writeSnapshotFile() writes the Raft snapshot (CA key, token hashes) owner-only", async () => {
  const dir = await Deno.makeTempDir();
  const s = Store.open(":memory:");
  withToken(s, T1, "secret-one", "k1");
  try {
    await s.writeSnapshotFile(`${dir}/raft.snap`, "raft");
    assert.equal((await Deno.stat(`${dir}/raft.snap`)).mode! & 0o777, 0o600);
  } finally {
    s.close();
    await Deno.remove(dir, { recursive: true });
  }
});
