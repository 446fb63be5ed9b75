/**
 * Edge certificates in user snapshots: left out without secrets; with them, their keys opened
 * inside the passphrase seal and sealed again under the target cluster's key by the restore,
 * never in clear in what the target replicates.
 */
import assert from "node:assert/strict";
import {
  ClusterKey,
  ClusterKeyBox,
  openEdgeKey,
  openWithPassphrase,
  sealWithPassphrase,
} from "../pki/mod.ts";
import { testEdgeCert } from "../pki/testing.ts";
import { type Command, encodeFrame, encodeHeader, SnapshotDecoder } from "../store/mod.ts";
import { concatBytes } from "../lib/bytes.ts";
import { addToken, type Fixture, fixture, put } from "./_testing.ts";
import { PASSPHRASE_HEADER, SECRETS_HEADER } from "./snapshot_secrets.ts";

const WEB = testEdgeCert(["web.example.com"]);
const API = testEdgeCert(["api.example.com"]);
const OWN = testEdgeCert(["own.example.com"]);
const PASS = "correct horse";
/** Every member's management token (snapshots need acl:write). */
const MGMT = "management-secret";
const AUTH = { "X-Consul-Token": MGMT };
const latin = (b: Uint8Array) => new TextDecoder("latin1").decode(b);
/** A line from the middle of a key PEM: what a leak would show. */
const keyLine = (pem: string) => pem.split("\n")[2]!;

interface Member {
  f: Fixture;
  box: ClusterKeyBox;
  /** Every command proposed (what this cluster's Raft log would hold). */
  log: Command[];
}

function member(box: ClusterKeyBox = new ClusterKeyBox(ClusterKey.generate())): Member {
  const f = fixture({ secrets: box, aclDefault: "deny" });
  addToken(f.store, MGMT, "management");
  const log: Command[] = [];
  const propose = f.cluster.propose.bind(f.cluster);
  f.cluster.propose = (c) => {
    log.push(c);
    return propose(c);
  };
  return { f, box, log };
}

async function addCert(m: Member, name: string, t: typeof WEB, isDefault = false) {
  const r = await m.f.app.request(
    `/v1/berth/certs/${name}`,
    put({ certPem: t.certPem, keyPem: t.keyPem, default: isDefault }, AUTH),
  );
  assert.equal(r.status, 200, await r.text());
}

async function save(m: Member, passphrase?: string): Promise<Response> {
  return await m.f.app.request(
    passphrase === undefined ? "/v1/snapshot" : "/v1/snapshot?include-secrets=true",
    {
      headers: {
        ...AUTH,
        ...(passphrase === undefined ? {} : { [PASSPHRASE_HEADER]: passphrase }),
      },
    },
  );
}

async function restore(m: Member, body: Uint8Array, passphrase?: string) {
  const r = await m.f.app.request("/v1/snapshot", {
    method: "PUT",
    body: body as BodyInit,
    headers: { ...AUTH, ...(passphrase === undefined ? {} : { [PASSPHRASE_HEADER]: passphrase }) },
  });
  return { status: r.status, text: await r.text(), secrets: r.headers.get(SECRETS_HEADER) };
}

/** Everything a restore proposed, as text (the chunks' bytes included). */
function logText(m: Member): string {
  return m.log.map((c) => c.type === "restore.chunk" ? latin(c.data) : JSON.stringify(c)).join(
    "\n",
  );
}

Deno.test("snapshot with secrets moves certificates to a new cluster, keys sealed again under its key", async () => {
  const src = member();
  const dst = member();
  try {
    await addCert(src, "web", WEB, true);
    await addCert(src, "api", API);
    const r = await save(src, PASS);
    assert.equal(r.status, 200);
    const file = new Uint8Array(await r.arrayBuffer());
    for (const t of [WEB, API]) assert.ok(!latin(file).includes(keyLine(t.keyPem)));

    await addCert(dst, "own", OWN);
    dst.log.length = 0;
    const res = await restore(dst, file, PASS);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.secrets, "restored");
    const certs = dst.f.store.edgeCerts();
    assert.deepEqual(certs.map((c) => [c.name, c.isDefault]), [["api", false], ["web", true]]);
    assert.equal(openEdgeKey(dst.box, certs[1]!), WEB.keyPem);
    assert.equal(openEdgeKey(dst.box, certs[0]!), API.keyPem);
    // Sealed under the target's key, not the source's.
    assert.throws(() => openEdgeKey(src.box, certs[1]!), /sealed under another cluster key/);
    // Nothing the target replicated holds a key in clear.
    const text = logText(dst);
    assert.ok(text.includes("web.example.com"), "the certificates went through the log");
    for (const t of [WEB, API]) assert.ok(!text.includes(keyLine(t.keyPem)), "a key in clear");
  } finally {
    src.f.close();
    dst.f.close();
  }
});

Deno.test("snapshot without secrets leaves certificates out; the target keeps its own", async () => {
  const src = member();
  const dst = member();
  try {
    await addCert(src, "web", WEB);
    const file = new Uint8Array(await (await save(src)).arrayBuffer());
    assert.ok(!latin(file).includes("web.example.com") && !latin(file).includes("bs1:"));
    await addCert(dst, "own", OWN);
    const res = await restore(dst, file);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(dst.f.store.edgeCerts().map((c) => c.name), ["own"]);
    // A sealed snapshot restored without its passphrase: the same.
    const sealed = new Uint8Array(await (await save(src, PASS)).arrayBuffer());
    const kept = await restore(dst, sealed);
    assert.equal(kept.status, 200, kept.text);
    assert.equal(kept.secrets, "kept");
    assert.deepEqual(dst.f.store.edgeCerts().map((c) => c.name), ["own"]);
  } finally {
    src.f.close();
    dst.f.close();
  }
});

Deno.test("snapshot with secrets answers 503 before any byte when a certificate key does not open", async () => {
  const src = member();
  try {
    await addCert(src, "web", WEB);
    const other = member(new ClusterKeyBox());
    // The store of `other` gets src's row: sealed under a key `other` does not have.
    await other.f.cluster.propose({ type: "cert.put", cert: src.f.store.edgeCert("web")! });
    const r = await save(other, PASS);
    assert.equal(r.status, 503);
    assert.match(
      await r.text(),
      /^include-secrets: certificate web: this member has no cluster key yet .*; retry, or save without secrets/,
    );
    other.f.close();
  } finally {
    src.f.close();
  }
});

Deno.test("restore with secrets answers 503 and changes nothing while the target has no cluster key", async () => {
  const src = member();
  const dst = member(new ClusterKeyBox());
  try {
    await addCert(src, "web", WEB);
    const file = new Uint8Array(await (await save(src, PASS)).arrayBuffer());
    const res = await restore(dst, file, PASS);
    assert.equal(res.status, 503, res.text);
    assert.match(res.text, /^restore: this member has no cluster key yet/);
    assert.deepEqual(dst.f.store.edgeCerts(), []);
  } finally {
    src.f.close();
    dst.f.close();
  }
});

Deno.test("restore refuses a sealed certificate whose key is not its certificate's, with one line", async () => {
  const dst = member();
  try {
    await addCert(dst, "own", OWN);
    const good = dst.f.store.edgeCert("own")!;
    const { name: _n, isDefault: _d, keySealed: _k, ...rest } = good;
    const row = (keyPem: string) => ({
      name: "web",
      data: JSON.stringify({ ...rest, keyPem }),
      is_default: 0,
    });
    const secrets = (rows: unknown[]) =>
      concatBytes([
        encodeHeader({ kind: "secrets", index: 5 }),
        encodeFrame({ t: "edge_certs", rows }),
        encodeFrame({ end: true, rows: rows.length }),
      ]);
    const file = (rows: unknown[]) =>
      concatBytes([
        encodeHeader({ kind: "user", index: 5 }),
        encodeFrame({ sealed: sealWithPassphrase(secrets(rows), PASS) }),
        encodeFrame({ end: true, rows: 0 }),
      ]);
    const res = await restore(dst, file([row(WEB.keyPem)]), PASS);
    assert.equal(res.status, 400, res.text);
    assert.equal(
      res.text.trim(),
      "restore: certificate web: keyPem: the key does not match the certificate's public key; nothing restored",
    );
    assert.deepEqual(dst.f.store.edgeCerts().map((c) => c.name), ["own"]);
  } finally {
    dst.f.close();
  }
});

Deno.test("restore takes a certificate's names, dates, serial and fingerprint from its checked PEM, not from the snapshot row", async () => {
  const src = member();
  const dst = member();
  try {
    await addCert(src, "web", WEB);
    const good = src.f.store.edgeCert("web")!;
    const saved = new Uint8Array(await (await save(src, PASS)).arrayBuffer());
    // The file edited inside its seal: the row's facts no longer those of its certificate.
    const forge = (row: Record<string, unknown>) => ({
      ...row,
      data: JSON.stringify({
        ...JSON.parse(String(row.data)),
        names: ["evil.example.com"],
        notAfter: good.notAfter + 10 * 365 * 86_400_000,
        notBefore: 0,
        serial: "01",
        fingerprint: "ab".repeat(32),
        issuer: "CN=someone else",
      }),
    });
    const outer = new SnapshotDecoder();
    const outerFrames = outer.push(saved);
    outer.finish();
    const edited: Uint8Array[] = [encodeHeader(outer.header!)];
    for (const f of outerFrames) {
      if (!("sealed" in f)) {
        edited.push(encodeFrame(f));
        continue;
      }
      const inner = new SnapshotDecoder();
      const frames = inner.push(openWithPassphrase(f.sealed, PASS));
      inner.finish();
      const out: Uint8Array[] = [encodeHeader(inner.header!)];
      for (const g of frames) {
        out.push(
          encodeFrame("t" in g && g.t === "edge_certs" ? { t: g.t, rows: g.rows.map(forge) } : g),
        );
      }
      edited.push(encodeFrame({ sealed: sealWithPassphrase(concatBytes(out), PASS) }));
    }
    const res = await restore(dst, concatBytes(edited), PASS);
    assert.equal(res.status, 200, res.text);
    const web = dst.f.store.edgeCert("web")!;
    assert.ok(web, "restored");
    assert.deepEqual(web.names, good.names);
    assert.equal(web.notAfter, good.notAfter);
    assert.equal(web.notBefore, good.notBefore);
    assert.equal(web.serial, good.serial);
    assert.equal(web.fingerprint, good.fingerprint);
    assert.equal(web.issuer, good.issuer);
    assert.equal(openEdgeKey(dst.box, web), WEB.keyPem);
  } finally {
    src.f.close();
    dst.f.close();
  }
});
