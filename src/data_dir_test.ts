import assert from "node:assert/strict";
import {
  DataDirError,
  LOCK_FILE,
  lockWithin,
  NODE_FILE,
  openDataDir,
  RAFT_FILE,
  STORE_FILE,
  writeSecretFile,
} from "./data_dir.ts";
import { SqliteRaftStorage } from "./cluster/mod.ts";
import { Store } from "./store/mod.ts";

function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "berth-datadir-" });
}

Deno.test("openDataDir() refuses a directory another holder has locked, naming its pid", () => {
  const dir = tempDir();
  const first = openDataDir(dir, "n1");
  try {
    assert.throws(
      () => openDataDir(dir, "n2"),
      (e: Error) => {
        assert.ok(e instanceof DataDirError);
        assert.match(e.message, new RegExp(`in use by another berth agent \\(pid ${Deno.pid}\\)`));
        assert.match(e.message, /its own --data-dir/);
        return true;
      },
    );
    assert.equal(Deno.readTextFileSync(`${dir}/${LOCK_FILE}`).trim(), String(Deno.pid));
  } finally {
    first.release();
  }
  // Released: the next agent gets it.
  openDataDir(dir, "n1").release();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("openDataDir() takes over the lock of a process that died holding it", async () => {
  const dir = tempDir();
  // Another process takes the lock, says so, and is killed without releasing it.
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const f = Deno.openSync(${JSON.stringify(`${dir}/${LOCK_FILE}`)}, ` +
      `{ read: true, write: true, create: true }); f.lockSync(true); ` +
      `f.writeSync(new TextEncoder().encode(Deno.pid + "\\n")); console.log("locked"); ` +
      `setTimeout(() => {}, 60000);`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /locked/);
  assert.throws(() => openDataDir(dir, "n1"), /in use by another berth agent \(pid \d+\)/);
  child.kill("SIGKILL");
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel();
  const lock = openDataDir(dir, "n1");
  assert.equal(Deno.readTextFileSync(`${dir}/${LOCK_FILE}`).trim(), String(Deno.pid));
  lock.release();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("openDataDir() refuses another node name than the directory was made for", () => {
  const dir = tempDir();
  openDataDir(dir, "cfgnode").release();
  assert.equal(Deno.readTextFileSync(`${dir}/${NODE_FILE}`).trim(), "cfgnode");
  assert.throws(
    () => openDataDir(dir, "flagnode"),
    (e: Error) => {
      assert.ok(e instanceof DataDirError);
      assert.match(e.message, /belongs to node "cfgnode", not "flagnode"/);
      assert.match(e.message, /--node cfgnode/);
      return true;
    },
  );
  // The refusal released the lock: the right name still starts.
  openDataDir(dir, "cfgnode").release();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("openDataDir() records the name again when the node file is empty", () => {
  const dir = tempDir();
  Deno.writeTextFileSync(`${dir}/${NODE_FILE}`, "");
  openDataDir(dir, "n1").release();
  assert.equal(Deno.readTextFileSync(`${dir}/${NODE_FILE}`).trim(), "n1");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("openDataDir() names the directory it cannot create", () => {
  const dir = tempDir();
  Deno.writeTextFileSync(`${dir}/file`, "x");
  assert.throws(() => openDataDir(`${dir}/file/sub`, "n1"), /cannot create --data-dir .*file\/sub/);
  Deno.removeSync(dir, { recursive: true });
});

/** A data directory as a cluster member named `name` (member id 2) leaves it, without `node`. */
async function memberDir(name: string): Promise<string> {
  const dir = tempDir();
  const raft = SqliteRaftStorage.open(`${dir}/${RAFT_FILE}`, {
    confState: () => ({ voters: [], learners: [] }),
  });
  await raft.setIdentity({ clusterId: "c1", id: 2, nonce: "x" });
  await raft.close();
  const store = Store.open(`${dir}/${STORE_FILE}`);
  store.apply(1, {
    type: "conf",
    voters: [1, 2],
    learners: [],
    upsert: { id: 2, name, address: "127.0.0.2:8300" },
  });
  store.close();
  return dir;
}

Deno.test("openDataDir() refuses a name other than the one the cluster knows the member by", async (t) => {
  await t.step("a directory made before the node file existed", async () => {
    const dir = await memberDir("n-old");
    assert.throws(
      () => openDataDir(dir, "n-new"),
      (e: Error) => {
        assert.ok(e instanceof DataDirError);
        assert.match(e.message, /belongs to node "n-old", not "n-new"/);
        assert.match(e.message, /--node n-old/);
        return true;
      },
    );
    assert.throws(() => Deno.statSync(`${dir}/${NODE_FILE}`), Deno.errors.NotFound);
    openDataDir(dir, "n-old").release();
    assert.equal(Deno.readTextFileSync(`${dir}/${NODE_FILE}`).trim(), "n-old");
    Deno.removeSync(dir, { recursive: true });
  });
  await t.step("a node file written under another name before the check", async () => {
    const dir = await memberDir("n-old");
    Deno.writeTextFileSync(`${dir}/${NODE_FILE}`, "n-new\n");
    assert.throws(() => openDataDir(dir, "n-new"), /belongs to node "n-old", not "n-new"/);
    // The cluster's name wins and corrects the file.
    openDataDir(dir, "n-old").release();
    assert.equal(Deno.readTextFileSync(`${dir}/${NODE_FILE}`).trim(), "n-old");
    Deno.removeSync(dir, { recursive: true });
  });
});

Deno.test("writeSecretFile() writes mode 0600, also over an existing wider file, and replaces it", () => {
  const dir = Deno.makeTempDirSync({ prefix: "berth-secret-file-" });
  try {
    const path = `${dir}/management-token`;
    writeSecretFile(path, "first\n");
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.equal(Deno.readTextFileSync(path), "first\n");
    Deno.chmodSync(path, 0o644);
    writeSecretFile(path, "2\n");
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.equal(Deno.readTextFileSync(path), "2\n");
    assert.throws(() => writeSecretFile(`${dir}/missing/x`, "s"), /^DataDirError: cannot write /);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("writeSecretFile() replaces a symlink at its path instead of writing the secret through it", () => {
  const dir = Deno.makeTempDirSync({ prefix: "berth-secret-file-" });
  try {
    const elsewhere = `${dir}/elsewhere`;
    Deno.writeTextFileSync(elsewhere, "not a secret\n");
    Deno.chmodSync(elsewhere, 0o644);
    const path = `${dir}/management-token`;
    Deno.symlinkSync(elsewhere, path);
    writeSecretFile(path, "secret\n");
    assert.equal(Deno.lstatSync(path).isSymlink, false);
    assert.equal(Deno.readTextFileSync(path), "secret\n");
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.equal(Deno.readTextFileSync(elsewhere), "not a secret\n");
    assert.equal(Deno.statSync(elsewhere).mode! & 0o777, 0o644);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "elsewhere",
      "management-token",
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("openDataDir() makes the directory 0700 and the store and Raft log files 0600", () => {
  const parent = tempDir();
  const fresh = `${parent}/fresh`;
  openDataDir(fresh, "n1").release();
  assert.equal(Deno.statSync(fresh).mode! & 0o777, 0o700);
  // An existing, wider directory and files (made before this check, or by hand) are narrowed.
  const old = `${parent}/old`;
  Deno.mkdirSync(old, { mode: 0o755 });
  Deno.chmodSync(old, 0o755);
  Deno.writeFileSync(`${old}/${STORE_FILE}`, new Uint8Array(0), { mode: 0o644 });
  Deno.chmodSync(`${old}/${STORE_FILE}`, 0o644);
  openDataDir(old, "n1").release();
  assert.equal(Deno.statSync(old).mode! & 0o777, 0o700);
  for (const dir of [fresh, old]) {
    for (const f of [STORE_FILE, RAFT_FILE]) {
      assert.equal(Deno.statSync(`${dir}/${f}`).mode! & 0o777, 0o600, `${dir}/${f}`);
    }
  }
  const store = Store.open(`${fresh}/${STORE_FILE}`);
  store.apply(1, { type: "kv.put", key: "k", value: new Uint8Array([1]), flags: 0 });
  for (const f of Deno.readDirSync(fresh)) {
    if (f.name.startsWith(STORE_FILE)) {
      assert.equal(Deno.statSync(`${fresh}/${f.name}`).mode! & 0o777, 0o600, f.name);
    }
  }
  store.close();
  Deno.removeSync(parent, { recursive: true });
});

Deno.test("lockWithin() tries the lock again until it is free or the wait is over", () => {
  let tries = 0;
  const freeOnThird = { tryLockSync: () => ++tries >= 3 };
  assert.equal(lockWithin(freeOnThird, 1_000), true);
  assert.equal(tries, 3);
  let held = 0;
  const neverFree = { tryLockSync: () => (held++, false) };
  assert.equal(lockWithin(neverFree, 60), false);
  assert.ok(held >= 2, `tried ${held} times`);
});
