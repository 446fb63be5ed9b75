import assert from "node:assert/strict";
import { ClusterKey } from "../pki/cluster_key.ts";
import { sealEdgeCert } from "../pki/edge_cert.ts";
import { testEdgeCert } from "../pki/testing.ts";
import { type Change, type EdgeCert, encodeFrame, encodeHeader, Store } from "./mod.ts";
import { concatBytes } from "../lib/bytes.ts";

const KEY = ClusterKey.generate();
const WEB = testEdgeCert(["web.example.com", "*.example.com"]);
const API = testEdgeCert(["api.example.com"]);

function edge(name: string, t = WEB, isDefault = false): EdgeCert {
  return sealEdgeCert(KEY, {
    name,
    certPem: t.certPem,
    keyPem: t.keyPem,
    source: "manual",
    isDefault,
    nowMs: Date.now(),
  });
}

function store(): { s: Store; changes: Change[]; next: () => number } {
  const s = Store.open(":memory:");
  const changes: Change[] = [];
  s.subscribe((c) => changes.push(c));
  let i = 0;
  return { s, changes, next: () => ++i };
}

Deno.test("Store cert.put adds a certificate that edgeCerts() and edgeCert() return whole", () => {
  const { s, changes, next } = store();
  const c = edge("web");
  assert.deepEqual(s.apply(next(), { type: "cert.put", cert: c }), { ok: true });
  assert.deepEqual(s.edgeCerts(), [c]);
  assert.deepEqual(s.edgeCert("web"), c);
  assert.equal(s.edgeCert("nope"), undefined);
  assert.deepEqual([...changes[0]!.tables], ["edge_certs"]);
  assert.equal(s.tableIndex("edge_certs"), 1);
});

Deno.test("Store cert.put replaces a certificate of the same name", () => {
  const { s, next } = store();
  s.apply(next(), { type: "cert.put", cert: edge("web") });
  const newer = edge("web", API);
  s.apply(next(), { type: "cert.put", cert: newer });
  assert.deepEqual(s.edgeCerts(), [newer]);
});

Deno.test("Store cert.put of a default clears the old default in the same apply", () => {
  const { s, changes, next } = store();
  s.apply(next(), { type: "cert.put", cert: edge("a", WEB, true) });
  s.apply(next(), { type: "cert.put", cert: edge("b", API) });
  assert.deepEqual(s.edgeCerts().map((c) => [c.name, c.isDefault]), [["a", true], ["b", false]]);
  s.apply(next(), { type: "cert.put", cert: edge("b", API, true) });
  assert.deepEqual(s.edgeCerts().map((c) => [c.name, c.isDefault]), [["a", false], ["b", true]]);
  assert.equal(changes.length, 3);
  // Putting the default again as not default leaves no default.
  s.apply(next(), { type: "cert.put", cert: edge("b", API, false) });
  assert.deepEqual(s.edgeCerts().map((c) => c.isDefault), [false, false]);
});

Deno.test("Store cert.rm removes a certificate and names one that is not there", () => {
  const { s, changes, next } = store();
  s.apply(next(), { type: "cert.put", cert: edge("web") });
  assert.deepEqual(s.apply(next(), { type: "cert.rm", name: "web" }), { ok: true });
  assert.deepEqual(s.edgeCerts(), []);
  assert.deepEqual(s.apply(next(), { type: "cert.rm", name: "web" }), {
    ok: false,
    error: "no certificate web",
  });
  assert.equal(changes.length, 3);
  assert.deepEqual([...changes[2]!.tables], []);
});

Deno.test("Store refuses a bad cert.put or cert.rm with one line, changes nothing, and goes on", async (t) => {
  const good = edge("web");
  const cases: [string, unknown, RegExp][] = [
    ["no cert", { type: "cert.put" }, /^command\.cert: expected an object/],
    [
      "key in clear",
      { type: "cert.put", cert: { ...good, keySealed: WEB.keyPem } },
      /^command\.cert\.keySealed: expected a key sealed under the cluster key \(bs1:…\)$/,
    ],
    [
      "bad name",
      { type: "cert.put", cert: { ...good, name: "../x" } },
      /^command\.cert\.name: expected 1 to 253/,
    ],
    [
      "no names",
      { type: "cert.put", cert: { ...good, names: [] } },
      /^command\.cert\.names: expected a list of 1 to 1000 names/,
    ],
    [
      "upper-case name",
      { type: "cert.put", cert: { ...good, names: ["Web.example"] } },
      /^command\.cert\.names\[0\]: expected a lower-case DNS name/,
    ],
    [
      "not PEM",
      { type: "cert.put", cert: { ...good, certPem: "hello" } },
      /^command\.cert\.certPem: expected PEM certificates/,
    ],
    [
      "ends before it starts",
      { type: "cert.put", cert: { ...good, notAfter: good.notBefore - 1 } },
      /^command\.cert\.notAfter: expected an integer in/,
    ],
    [
      "bad source",
      { type: "cert.put", cert: { ...good, source: "x" } },
      /^command\.cert\.source: expected "manual" or "acme"/,
    ],
    [
      "default not boolean",
      { type: "cert.put", cert: { ...good, isDefault: 1 } },
      /^command\.cert\.isDefault: expected true or false/,
    ],
    [
      "bad fingerprint",
      { type: "cert.put", cert: { ...good, fingerprint: "AB" } },
      /^command\.cert\.fingerprint: expected 64 lower-case hex digits/,
    ],
    [
      "bad serial",
      { type: "cert.put", cert: { ...good, serial: "" } },
      /^command\.cert\.serial: expected 1 to 64 lower-case hex digits/,
    ],
    [
      "issuer with a line break",
      { type: "cert.put", cert: { ...good, issuer: "a\nb" } },
      /^command\.cert\.issuer: expected one line of text/,
    ],
    ["rm without name", { type: "cert.rm" }, /^command\.name: expected a certificate name/],
    ["rm bad name", { type: "cert.rm", name: "" }, /^command\.name: expected 1 to 253/],
  ];
  for (const [what, cmd, want] of cases) {
    await t.step(what, () => {
      const { s, changes, next } = store();
      const r = s.apply(next(), cmd);
      assert.equal(r.ok, false);
      assert.match(r.error!, want);
      assert.ok(!r.error!.includes("PRIVATE KEY"), "never quotes a key");
      assert.deepEqual(s.edgeCerts(), []);
      assert.equal(s.appliedIndex(), 1);
      assert.deepEqual([...changes[0]!.tables], []);
      assert.deepEqual(s.apply(next(), { type: "cert.put", cert: good }), { ok: true });
    });
  }
});

Deno.test("Store batch of cert.put with a failing command rolls the put back", () => {
  const { s, next } = store();
  const r = s.apply(next(), {
    type: "batch",
    commands: [{ type: "cert.put", cert: edge("web") }, { type: "cert.rm", name: "gone" }],
  });
  assert.equal(r.ok, false);
  assert.deepEqual(s.edgeCerts(), []);
});

Deno.test("Store Raft snapshot carries edge certificates to a new replica", async () => {
  const { s, next } = store();
  s.apply(next(), { type: "cert.put", cert: edge("web", WEB, true) });
  s.apply(next(), { type: "cert.put", cert: edge("api", API) });
  const dir = Deno.makeTempDirSync();
  try {
    await s.writeSnapshotFile(`${dir}/raft`, "raft");
    const b = Store.open(":memory:");
    const seen: Change[] = [];
    b.subscribe((c) => seen.push(c));
    b.installSnapshotFile(`${dir}/raft`);
    assert.deepEqual(b.edgeCerts(), s.edgeCerts());
    assert.ok(seen[0]!.tables.has("edge_certs"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Store clusterkey.set keeps the first fingerprint and refuses another", () => {
  const { s, next } = store();
  const a = ClusterKey.generate().fingerprint;
  const b = ClusterKey.generate().fingerprint;
  assert.equal(s.clusterKeyFingerprint(), undefined);
  assert.deepEqual(s.apply(next(), { type: "clusterkey.set", fingerprint: a }), { ok: true });
  assert.deepEqual(s.apply(next(), { type: "clusterkey.set", fingerprint: a }), { ok: true });
  assert.deepEqual(s.apply(next(), { type: "clusterkey.set", fingerprint: b }), {
    ok: false,
    error: `the cluster key is already set (${a.slice(0, 16)})`,
  });
  assert.equal(s.clusterKeyFingerprint(), a);
  const bad = s.apply(next(), { type: "clusterkey.set", fingerprint: "x" });
  assert.match(bad.error!, /^command\.fingerprint: expected 64 lower-case hex digits/);
  assert.equal(s.clusterKeyFingerprint(), a);
});

Deno.test("Store Raft snapshot carries the cluster key's fingerprint, a user snapshot does not", async () => {
  const { s, next } = store();
  const fp = ClusterKey.generate().fingerprint;
  s.apply(next(), { type: "clusterkey.set", fingerprint: fp });
  const dir = Deno.makeTempDirSync();
  try {
    await s.writeSnapshotFile(`${dir}/raft`, "raft");
    const b = Store.open(":memory:");
    b.installSnapshotFile(`${dir}/raft`);
    assert.equal(b.clusterKeyFingerprint(), fp);
    await s.writeSnapshotFile(`${dir}/user`, "user");
    const text = new TextDecoder("latin1").decode(Deno.readFileSync(`${dir}/user`));
    assert.ok(!text.includes(fp));
    assert.ok(new TextDecoder("latin1").decode(Deno.readFileSync(`${dir}/raft`)).includes(fp));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Store restore.commit with certs replaces the certificates only with rows cert.put would take", async (t) => {
  const snapshot = (rows: Record<string, unknown>[]) =>
    concatBytes([
      encodeHeader({ kind: "user", index: 9 }),
      encodeFrame({ t: "edge_certs", rows }),
      encodeFrame({ end: true, rows: rows.length }),
    ]);
  const row = (c: EdgeCert, over: Record<string, unknown> = {}) => {
    const { name, isDefault, ...data } = c;
    return { name, data: JSON.stringify({ ...data, ...over }), is_default: isDefault ? 1 : 0 };
  };
  const restore = (s: Store, next: () => number, bytes: Uint8Array) => {
    s.apply(next(), { type: "restore.begin", id: "r1" });
    s.apply(next(), { type: "restore.chunk", id: "r1", seq: 0, data: bytes });
    return s.apply(next(), {
      type: "restore.commit",
      id: "r1",
      chunks: 1,
      bytes: bytes.byteLength,
      certs: true,
    });
  };
  await t.step("good rows replace the live ones", () => {
    const { s, changes, next } = store();
    s.apply(next(), { type: "cert.put", cert: edge("old") });
    const r = restore(s, next, snapshot([row(edge("web", WEB, true))]));
    assert.deepEqual(r, { ok: true });
    assert.deepEqual(s.edgeCerts().map((c) => [c.name, c.isDefault]), [["web", true]]);
    assert.ok(changes.at(-1)!.tables.has("edge_certs"));
  });
  const bad: [string, Record<string, unknown>[], RegExp][] = [
    [
      "a key in clear",
      [row(edge("web"), { keySealed: WEB.keyPem })],
      /^restore: certificate web: cert\.keySealed: expected a key sealed/,
    ],
    [
      "two defaults",
      [row(edge("a", WEB, true)), row(edge("b", API, true))],
      /^restore: 2 certificates are the default, at most one may be; nothing restored$/,
    ],
    [
      "bad data",
      [{ name: "web", data: "{}", is_default: 0 }],
      /^restore: certificate web: cert\.names: expected a list/,
    ],
  ];
  for (const [what, rows, want] of bad) {
    await t.step(what, () => {
      const { s, next } = store();
      s.apply(next(), { type: "cert.put", cert: edge("old") });
      const r = restore(s, next, snapshot(rows));
      assert.equal(r.ok, false);
      assert.match(r.error!, want);
      assert.deepEqual(s.edgeCerts().map((c) => c.name), ["old"]);
    });
  }
  await t.step("without certs the staged rows are dropped", () => {
    const { s, next } = store();
    s.apply(next(), { type: "cert.put", cert: edge("old") });
    const bytes = snapshot([row(edge("web"))]);
    s.apply(next(), { type: "restore.begin", id: "r1" });
    s.apply(next(), { type: "restore.chunk", id: "r1", seq: 0, data: bytes });
    const r = s.apply(next(), {
      type: "restore.commit",
      id: "r1",
      chunks: 1,
      bytes: bytes.byteLength,
    });
    assert.deepEqual(r, { ok: true });
    assert.deepEqual(s.edgeCerts().map((c) => c.name), ["old"]);
  });
});
