import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  encodeFrame,
  encodeHeader,
  GLOBAL_MANAGEMENT_ID,
  SnapshotDecoder,
  type Store,
} from "../store/mod.ts";
import { concatBytes } from "../lib/bytes.ts";
import { createCa, openWithPassphrase } from "../pki/mod.ts";
import { type Fixture, fixture } from "./_testing.ts";
import { PASSPHRASE_HEADER, SECRETS_HEADER } from "./snapshot_secrets.ts";

const T1 = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const T2 = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
const hash = (s: string) => createHash("sha256").update(s).digest("hex");
const enc = new TextEncoder();

/** Each fixture's token secret: snapshots need acl:write, so the tokens here are management. */
const SECRET = new WeakMap<Fixture, string>();
const auth = (f: Fixture) => ({ "X-Consul-Token": SECRET.get(f)! });

/** A fixture holding KV `key` and a management ACL token `accessor` with `secret`. */
async function holding(key: string, accessor: string, secret: string): Promise<Fixture> {
  const f = fixture();
  SECRET.set(f, secret);
  await f.cluster.propose({ type: "kv.put", key, value: enc.encode("v"), flags: 0 });
  await f.cluster.propose({
    type: "acl.token.set",
    token: {
      accessorId: accessor,
      secretHash: hash(secret),
      description: "d",
      policies: [{ id: GLOBAL_MANAGEMENT_ID }],
      local: false,
      createTimeMs: 1,
    },
  });
  return f;
}

async function save(f: Fixture, passphrase?: string): Promise<Uint8Array> {
  const r = await f.app.request(
    passphrase === undefined ? "/v1/snapshot" : "/v1/snapshot?include-secrets=true",
    {
      headers: {
        ...auth(f),
        ...(passphrase === undefined ? {} : { [PASSPHRASE_HEADER]: passphrase }),
      },
    },
  );
  assert.equal(r.status, 200);
  return new Uint8Array(await r.arrayBuffer());
}

async function restore(f: Fixture, body: Uint8Array, passphrase?: string) {
  const r = await f.app.request("/v1/snapshot", {
    method: "PUT",
    body: body as BodyInit,
    headers: {
      ...auth(f),
      ...(passphrase === undefined ? {} : { [PASSPHRASE_HEADER]: passphrase }),
    },
  });
  return { status: r.status, text: await r.text(), secrets: r.headers.get(SECRETS_HEADER) };
}

const state = (s: Store) => ({
  keys: s.kvKeys(""),
  tokens: s.aclTokens().map((t) => t.accessorId).sort(),
});

Deno.test("GET /v1/snapshot leaves the token hashes out; include-secrets seals them", async () => {
  const src = await holding("k1", T1, "secret-one");
  try {
    const latin = (b: Uint8Array) => new TextDecoder("latin1").decode(b);
    const plain = await save(src);
    assert.ok(latin(plain).includes("k1"));
    assert.ok(!latin(plain).includes(hash("secret-one")) && !latin(plain).includes(T1));
    const sealed = await save(src, "correct horse");
    assert.ok(!latin(sealed).includes(hash("secret-one")) && !latin(sealed).includes(T1));
    assert.ok(sealed.byteLength > plain.byteLength);
    const noPass = await src.app.request("/v1/snapshot?include-secrets=true", {
      headers: auth(src),
    });
    assert.equal(noPass.status, 400);
    assert.equal(
      (await noPass.text()).trim(),
      `include-secrets needs a passphrase in the ${PASSPHRASE_HEADER} header`,
    );
    const empty = await src.app.request("/v1/snapshot?include-secrets", {
      headers: { ...auth(src), [PASSPHRASE_HEADER]: "" },
    });
    assert.equal(empty.status, 400);
  } finally {
    src.close();
  }
});

Deno.test("PUT /v1/snapshot restores ACL tokens only from sealed secrets with the right passphrase", async (t) => {
  const src = await holding("k1", T1, "secret-one");
  const sealed = await save(src, "correct horse");
  const plain = await save(src);
  src.close();
  const target = async () => await holding("k2", T2, "secret-two");
  const before = { keys: ["k2"], tokens: [T2, "00000000-0000-0000-0000-000000000002"].sort() };

  await t.step("wrong passphrase: 400, nothing changed", async () => {
    const f = await target();
    const r = await restore(f, sealed, "wrong");
    assert.equal(r.status, 400);
    assert.match(
      r.text,
      /^restore: the snapshot's secrets: wrong passphrase or damaged data; nothing restored/,
    );
    assert.deepEqual(state(f.store), before);
    f.close();
  });
  await t.step("no passphrase: user tables restored, ACL tokens kept", async () => {
    const f = await target();
    const r = await restore(f, sealed);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.secrets, "kept");
    assert.deepEqual(state(f.store), { ...before, keys: ["k1"] });
    f.close();
  });
  await t.step("right passphrase: ACL tokens restored too", async () => {
    const f = await target();
    const r = await restore(f, sealed, "correct horse");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.secrets, "restored");
    assert.deepEqual(state(f.store), {
      keys: ["k1"],
      tokens: [T1, "00000000-0000-0000-0000-000000000002"].sort(),
    });
    f.close();
  });
  await t.step("a snapshot without secrets: a passphrase changes nothing of the ACLs", async () => {
    const f = await target();
    const r = await restore(f, plain, "correct horse");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.secrets, "none");
    assert.deepEqual(state(f.store), { ...before, keys: ["k1"] });
    f.close();
  });
});

Deno.test("PUT /v1/snapshot drops ACL rows sent in the clear", async () => {
  const f = await holding("k2", T2, "secret-two");
  try {
    const row = {
      accessor_id: T1,
      secret_hash: hash("planted"),
      description: "planted",
      policies: "[]",
      local: 0,
      create_time: 1,
      create_index: 1,
      modify_index: 1,
    };
    const crafted = concatBytes([
      encodeHeader({ kind: "user", index: 5 }),
      encodeFrame({ t: "acl_tokens", rows: [row] }),
      encodeFrame({ end: true, rows: 1 }),
    ]);
    const r = await restore(f, crafted);
    assert.equal(r.status, 200, r.text);
    assert.equal(f.store.aclToken(T1), undefined);
    assert.ok(f.store.aclToken(T2) !== undefined);
  } finally {
    f.close();
  }
});

Deno.test("PUT /v1/snapshot never replaces the cluster's CA or join tokens, even with the passphrase", async () => {
  const src = await holding("k1", T1, "secret-one");
  const dst = await holding("k2", T2, "secret-two");
  try {
    const cas = [
      createCa({ clusterId: "src", now: new Date() }),
      createCa({ clusterId: "dst", now: new Date() }),
    ];
    const init = (ca: string) => {
      const c = cas[ca === "source" ? 0 : 1]!;
      return { type: "pki.init" as const, caCert: c.certPem, caKey: c.keyPem };
    };
    await src.cluster.propose(init("source"));
    await dst.cluster.propose(init("target"));
    const token = (id: string) => ({
      type: "token.create" as const,
      id,
      hash: hash(id),
      ttlMs: null,
      uses: null,
      description: "",
      nowMs: 1,
    });
    await src.cluster.propose(token("srctok"));
    await dst.cluster.propose(token("dsttok"));
    const sealed = await save(src, "correct horse");
    const latin = new TextDecoder("latin1").decode(sealed);
    assert.ok(!latin.includes("PRIVATE KEY") && !latin.includes(hash("srctok")));
    // The backup has them, sealed.
    const frames = new SnapshotDecoder().push(sealed);
    const inner = openWithPassphrase(
      concatBytes(frames.flatMap((f) => "sealed" in f ? [f.sealed] : [])),
      "correct horse",
    );
    const innerTables = new SnapshotDecoder().push(inner).flatMap((f) => "t" in f ? [f.t] : []);
    assert.deepEqual(innerTables, ["acl_policies", "acl_tokens", "pki", "join_tokens"]);
    assert.ok(new TextDecoder().decode(inner).includes(cas[0]!.keyPem));
    const r = await restore(dst, sealed, "correct horse");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.secrets, "restored");
    assert.equal(dst.store.pki.ca()?.keyPem, cas[1]!.keyPem);
    assert.deepEqual(dst.store.pki.tokens().map((t) => t.id), ["dsttok"]);
    assert.ok(dst.store.aclToken(T1) !== undefined, "the ACL tokens were restored");
  } finally {
    src.close();
    dst.close();
  }
});
