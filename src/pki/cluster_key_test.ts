import assert from "node:assert/strict";
import {
  CLUSTER_KEY_FILE,
  ClusterKey,
  ClusterKeyBox,
  loadClusterKey,
  loadOrCreateClusterKey,
  saveClusterKey,
} from "./cluster_key.ts";

const plain = new TextEncoder().encode("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG…");
const CTX = "edge-cert:web.example.com";

Deno.test("ClusterKey.seal() output opens with the same key and context", () => {
  const k = ClusterKey.generate();
  const sealed = k.seal(plain, CTX);
  assert.match(sealed, new RegExp(`^bs1:${k.id}:[A-Za-z0-9+/]+=*$`));
  assert.deepEqual(k.open(sealed, CTX), plain);
  assert.deepEqual(k.open(k.seal(new Uint8Array(0), CTX), CTX), new Uint8Array(0));
});

Deno.test("ClusterKey.seal() uses a fresh IV every call and never shows the plain text", () => {
  const k = ClusterKey.generate();
  const a = k.seal(plain, CTX);
  const b = k.seal(plain, CTX);
  assert.notEqual(a, b);
  assert.ok(!a.includes("PRIVATE"));
  assert.ok(!atob(a.split(":")[2]!).includes("PRIVATE"));
});

Deno.test("ClusterKey.open() names another cluster key", () => {
  const a = ClusterKey.generate();
  const b = ClusterKey.generate();
  assert.throws(() => b.open(a.seal(plain, CTX), CTX), {
    message: `${CTX}: sealed under another cluster key (key ${a.id}, this member's is ${b.id})`,
  });
});

Deno.test("ClusterKey.open() refuses a value sealed for another context", () => {
  const k = ClusterKey.generate();
  assert.throws(
    () => k.open(k.seal(plain, CTX), "edge-cert:other.example.com"),
    /edge-cert:other\.example\.com: cannot open the sealed value \(other context, damaged or cut short\)/,
  );
});

Deno.test("ClusterKey.open() detects a changed byte in IV, ciphertext and tag", () => {
  const k = ClusterKey.generate();
  const sealed = k.seal(plain, CTX);
  const [v, id, b64] = sealed.split(":") as [string, string, string];
  const body = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  for (const at of [0, 11, 12, 20, body.length - 1]) {
    const bad = body.slice();
    bad[at]! ^= 0x01;
    const text = `${v}:${id}:${btoa(String.fromCharCode(...bad))}`;
    assert.throws(() => k.open(text, CTX), /cannot open the sealed value/, `byte ${at}`);
  }
});

Deno.test("ClusterKey.open() refuses cut-short data with a clear error", () => {
  const k = ClusterKey.generate();
  const sealed = k.seal(plain, CTX);
  const [v, id, b64] = sealed.split(":") as [string, string, string];
  const body = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const cut = (n: number) => `${v}:${id}:${btoa(String.fromCharCode(...body.subarray(0, n)))}`;
  assert.throws(() => k.open(cut(27), CTX), { message: `${CTX}: sealed value is cut short` });
  assert.throws(() => k.open(cut(0), CTX), { message: `${CTX}: sealed value is cut short` });
  assert.throws(() => k.open(cut(body.length - 1), CTX), /damaged or cut short/);
  assert.throws(() => k.open(`${v}:${id}`, CTX), /not a sealed value/);
});

Deno.test("ClusterKey.open() refuses foreign text and names an unknown version", () => {
  const k = ClusterKey.generate();
  for (const bad of ["", "-----BEGIN PRIVATE KEY-----", "bs1:zz:AAAA", "bs1:0123:AAAA"]) {
    assert.throws(() => k.open(bad, CTX), {
      message: `${CTX}: not a sealed value (expected bs1:…)`,
    });
  }
  const v2 = k.seal(plain, CTX).replace(/^bs1/, "bs2");
  assert.throws(() => k.open(v2, CTX), {
    message: `${CTX}: sealed value version 2 is not known to this berth`,
  });
});

Deno.test("ClusterKey refuses an empty or overlong context and a key of another size", () => {
  const k = ClusterKey.generate();
  assert.throws(() => k.seal(plain, ""), /context: expected 1 to 512 characters/);
  assert.throws(() => k.seal(plain, "x".repeat(513)), /context: expected 1 to 512 characters/);
  assert.throws(() => new ClusterKey(new Uint8Array(16)), /expected 32 bytes, got 16/);
});

Deno.test("ClusterKey.parse() reads text() back and refuses anything else", () => {
  const k = ClusterKey.generate();
  const back = ClusterKey.parse(k.text());
  assert.equal(back.fingerprint, k.fingerprint);
  assert.deepEqual(back.open(k.seal(plain, CTX), CTX), plain);
  assert.match(k.fingerprint, /^[0-9a-f]{64}$/);
  assert.ok(!k.text().includes(k.fingerprint), "the fingerprint is not the key");
  for (const bad of ["", "zz", k.text().slice(2), `${k.text()}${k.text()}`]) {
    assert.throws(() => ClusterKey.parse(bad), /expected one line of 64 hex digits/);
  }
});

Deno.test("ClusterKeyBox seals only once it has a key, and keeps that key", () => {
  const box = new ClusterKeyBox();
  assert.throws(() => box.seal(plain, CTX), /this member has no cluster key yet/);
  assert.throws(() => box.open("bs1:x", CTX), /this member has no cluster key yet/);
  const seen: string[] = [];
  box.whenSet((k) => seen.push(k.id));
  const k = ClusterKey.generate();
  box.set(k);
  box.set(ClusterKey.parse(k.text()));
  assert.deepEqual(seen, [k.id]);
  assert.deepEqual(box.open(box.seal(plain, CTX), CTX), plain);
  assert.throws(() => box.set(ClusterKey.generate()), /already has cluster key/);
  box.whenSet((x) => seen.push(x.id));
  assert.deepEqual(seen, [k.id, k.id]);
});

Deno.test("loadOrCreateClusterKey() writes a 0600 key file once and loads it after", () => {
  const dir = Deno.makeTempDirSync();
  try {
    assert.equal(loadClusterKey(dir), undefined);
    const k = loadOrCreateClusterKey(dir);
    const path = `${dir}/${CLUSTER_KEY_FILE}`;
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.equal(loadOrCreateClusterKey(dir).fingerprint, k.fingerprint);
    assert.equal(loadClusterKey(dir)?.fingerprint, k.fingerprint);
    const other = ClusterKey.generate();
    saveClusterKey(dir, other);
    assert.equal(loadClusterKey(dir)?.fingerprint, other.fingerprint);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [CLUSTER_KEY_FILE]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("loadClusterKey() names a damaged key file", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/${CLUSTER_KEY_FILE}`, "not a key\n", { mode: 0o600 });
    Deno.chmodSync(`${dir}/${CLUSTER_KEY_FILE}`, 0o600);
    assert.throws(
      () => loadClusterKey(dir),
      { message: `${dir}/${CLUSTER_KEY_FILE}: expected one line of 64 hex digits` },
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("loadClusterKey() refuses a key file that group or others may read or write, naming the chmod that fixes it", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const key = loadOrCreateClusterKey(dir);
    const path = `${dir}/${CLUSTER_KEY_FILE}`;
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602]) {
      Deno.chmodSync(path, mode);
      assert.throws(() => loadClusterKey(dir), {
        message: `${path} is readable or writable by others (mode 0${
          mode.toString(8)
        }); it holds the cluster key: run chmod 600 ${path}`,
      });
    }
    Deno.chmodSync(path, 0o600);
    assert.equal(loadClusterKey(dir)?.fingerprint, key.fingerprint);
    Deno.chmodSync(path, 0o400);
    assert.equal(loadClusterKey(dir)?.fingerprint, key.fingerprint);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ClusterKeyBox.expect() refuses another key, and a held key that is not the cluster's", () => {
  const k = ClusterKey.generate();
  const other = ClusterKey.generate();
  const box = new ClusterKeyBox();
  assert.equal(box.ready, false);
  box.expect(k.fingerprint);
  assert.throws(
    () => box.set(other),
    new RegExp(`cluster key ${other.id} is not the cluster's \\(${k.id}\\)`),
  );
  box.set(k);
  assert.equal(box.ready, true);
  assert.deepEqual(box.open(box.seal(plain, CTX), CTX), plain);

  const held = new ClusterKeyBox(other);
  assert.equal(held.ready, false);
  held.seal(plain, CTX); // nothing expected yet: the key it has
  held.expect(k.fingerprint);
  assert.equal(held.ready, false);
  assert.throws(
    () => held.seal(plain, CTX),
    new RegExp(
      `this member's cluster key ${other.id} is not the cluster's ${k.id}: move its cluster-key file away`,
    ),
  );
});
