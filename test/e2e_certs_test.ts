/**
 * End to end: HTTPS certificates in the replicated store, with real members (TLS between them,
 * no Docker). A certificate added with `berth cert add` on one member of three is listed by
 * every member; every member holds the same cluster key (made by the bootstrap, handed out at
 * enrollment); the private key is in no member's `raft.db`, `store.db` (with their WAL files),
 * Raft snapshot or log; a member joining later gets the certificate and the key too. A snapshot
 * saved with secrets and restored into a new cluster brings the certificate, its key sealed
 * under the new cluster's key and nowhere in clear on the new cluster's disk. A member restarted
 * without its key file (as a data directory from before cluster keys) fetches the key from the
 * others over the member transport and serves its certificates' keys again.
 *
 * Run under the e2e lock: `flock /tmp/berth-e2e.lock deno test -A test/e2e_certs_test.ts`.
 */
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { Buffer } from "node:buffer";
import {
  type AgentProc,
  apiJson,
  berthCli,
  portsOf,
  startAgent,
  startCluster,
  stopAll,
} from "./harness.ts";
import { makeEdgeCerts } from "./edge_certs.ts";
import { loadClusterKey, openEdgeKey } from "../src/pki/mod.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

interface Listed {
  name: string;
  names: string[];
  fingerprint: string;
  default: boolean;
  source: string;
}

/** The files of a data directory a copied disk would leak: the Raft log, the store, snapshots. */
function stateFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (/^(raft|store)\.db(-wal|-shm)?$/.test(e.name)) out.push(`${dir}/${e.name}`);
  }
  try {
    for (const e of Deno.readDirSync(`${dir}/snapshots`)) out.push(`${dir}/snapshots/${e.name}`);
  } catch { /* none yet */ }
  return out;
}

/** The distinctive parts of a private key: PEM lines (as given and PKCS#8), DER, the scalar. */
function keyNeedles(pem: string): [string, Uint8Array][] {
  const key = createPrivateKey(pem);
  const pkcs8 = key.export({ type: "pkcs8", format: "der" }) as Buffer;
  const scalar = Buffer.from(key.export({ format: "jwk" }).d!, "base64url");
  return [
    ["the private scalar", scalar],
    ["the PKCS#8 DER", pkcs8],
    ...[pem, key.export({ type: "pkcs8", format: "pem" }).toString()].flatMap((p) =>
      p.split("\n").filter((l) => l.length > 16 && !l.startsWith("-----"))
        .map((l): [string, Uint8Array] => [`PEM line ${l.slice(0, 8)}…`, Buffer.from(l)])
    ),
  ];
}

/** Whether `hay` holds `needle` (bytes). */
function holds(hay: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).indexOf(needle) >= 0;
}

Deno.test(
  "e2e certs: berth cert add on one member is listed by all, keys only sealed on disk, a later member gets it",
  e2e,
  async () => {
    const certs = await makeEdgeCerts({ web: ["web.example.com", "*.web.example.com"] });
    const agents: AgentProc[] = [];
    try {
      // Raft snapshots every 16 entries, so a snapshot file exists to be checked too.
      agents.push(...await startCluster(3, { args: ["--snapshot-entries", "16"] }));
      const leaf = certs.leaf("web");
      const add = await berthCli(
        agents[1]!,
        "cert",
        "add",
        "--name",
        "web",
        "--default",
        leaf.crt,
        leaf.key,
      );
      assert.equal(add.code, 0, add.out);
      assert.match(
        add.out,
        /^Stored certificate web for web\.example\.com, \*\.web\.example\.com, valid until .* \(default\)$/m,
      );

      const listedBy = async (a: AgentProc) =>
        await apiJson(a, "/v1/berth/certs?stale") as Listed[];
      for (const a of agents) {
        await waitFor(`${a.node} lists web`, async () => (await listedBy(a)).length === 1);
        const [c] = await listedBy(a);
        assert.equal(c!.name, "web");
        assert.deepEqual(c!.names, ["web.example.com", "*.web.example.com"]);
        assert.equal(c!.fingerprint, leaf.fingerprint);
        assert.equal(c!.default, true);
        assert.equal(c!.source, "manual");
      }
      const list = await berthCli(agents[2]!, "cert", "list");
      assert.equal(list.code, 0, list.out);
      assert.match(list.out, /^Name +Names +Issuer +Expires +Source +Default\n/);
      assert.match(
        list.out,
        /^web +web\.example\.com,\*\.web\.example\.com +CN=berth edge test CA +\S+ +manual +yes$/m,
      );

      // Writes past a few Raft snapshots (the certificate is in the snapshot files too).
      for (let i = 0; i < 40; i++) {
        const r = await fetch(`${agents[0]!.httpUrl}/v1/kv/k${i}`, { method: "PUT", body: "v" });
        assert.equal(r.status, 200, await r.text());
      }

      // A member joining later lists it too.
      agents.push(
        await startAgent({
          node: "late",
          host: "127.0.0.4",
          bootstrap: false,
          join: [agents[0]!.clusterAddr],
          docker: false,
          args: ["--snapshot-entries", "16"],
        }),
      );
      const late = agents[3]!;
      await waitFor("the late member lists web", async () => (await listedBy(late)).length === 1);
      assert.equal((await listedBy(late))[0]!.fingerprint, leaf.fingerprint);
      await waitFor("the late member has the cluster key", () => {
        try {
          return Deno.readTextFileSync(`${late.dataDir}/cluster-key`).length > 0;
        } catch {
          return false;
        }
      });
    } finally {
      await stopAll(agents);
    }
    try {
      // One cluster key, the same on every member, owner-only.
      const keys = agents.map((a) => Deno.readTextFileSync(`${a.dataDir}/cluster-key`));
      assert.match(keys[0]!, /^[0-9a-f]{64}\n$/);
      for (const [i, k] of keys.entries()) {
        assert.equal(k, keys[0], `${agents[i]!.node}'s cluster key`);
        assert.equal(Deno.statSync(`${agents[i]!.dataDir}/cluster-key`).mode! & 0o777, 0o600);
      }
      assert.match(agents[3]!.log(), /got the cluster key [0-9a-f]{16} with the enrollment answer/);

      // The private key: its PEM lines, its PKCS#8 DER in base64, and the raw private scalar.
      const needles = keyNeedles(Deno.readTextFileSync(certs.leaf("web").key));
      // What shows the search works: the certificate itself is in those files.
      const certLine = Deno.readTextFileSync(certs.leaf("web").crt).split("\n")[3]!;
      for (const a of agents) {
        const files = stateFiles(a.dataDir);
        assert.ok(
          files.some((f) => f.endsWith("/raft.db")) && files.some((f) => f.endsWith("/store.db")),
        );
        let certSeen = false;
        for (const f of files) {
          const bytes = Deno.readFileSync(f);
          certSeen ||= holds(bytes, Buffer.from(certLine));
          for (const [what, needle] of needles) {
            assert.ok(!holds(bytes, needle), `${f} holds ${what} of the certificate's key`);
          }
        }
        assert.ok(certSeen, `${a.node}: the certificate is in its state files`);
        const log = a.log();
        for (const [what, needle] of needles) {
          assert.ok(!holds(new TextEncoder().encode(log), needle), `${a.node}'s log holds ${what}`);
        }
        assert.ok(!log.includes(keys[0]!.trim()), `${a.node}'s log holds the cluster key`);
      }
      assert.ok(
        agents.some((a) => stateFiles(a.dataDir).some((f) => f.includes("/snapshots/"))),
        "a Raft snapshot file was checked",
      );
    } finally {
      await certs.remove();
      for (const a of agents) Deno.removeSync(a.dataDir, { recursive: true });
    }
  },
);

Deno.test(
  "e2e certs: a snapshot saved with secrets moves a certificate to a new cluster, its key sealed under that cluster's key",
  e2e,
  async () => {
    const certs = await makeEdgeCerts({ web: ["web.example.com"] });
    const tmp = await Deno.makeTempDir({ prefix: "berth-e2e-certsnap-" });
    const agents: AgentProc[] = [];
    try {
      const src = await startAgent({ docker: false });
      agents.push(src);
      const leaf = certs.leaf("web");
      const add = await berthCli(src, "cert", "add", "--name", "web", leaf.crt, leaf.key);
      assert.equal(add.code, 0, add.out);
      Deno.writeTextFileSync(`${tmp}/pass`, "correct horse battery\n");
      const save = await berthCli(
        src,
        ...["snapshot", "save", `${tmp}/backup.snap`, "--include-secrets"],
        ...["--passphrase-file", `${tmp}/pass`],
      );
      assert.equal(save.code, 0, save.out);
      // The file carries the key only inside the passphrase seal.
      const file = Deno.readFileSync(`${tmp}/backup.snap`);
      for (const [what, needle] of keyNeedles(Deno.readTextFileSync(leaf.key))) {
        assert.ok(!holds(file, needle), `the snapshot file holds ${what}`);
      }

      const dst = await startAgent({ docker: false, host: "127.0.0.2" });
      agents.push(dst);
      const restore = await berthCli(
        dst,
        ...["snapshot", "restore", `${tmp}/backup.snap`, "--passphrase-file", `${tmp}/pass`],
      );
      assert.equal(restore.code, 0, restore.out);
      assert.match(restore.out, /with its ACL policies and tokens and HTTPS certificates/);
      const listed = await apiJson(dst, "/v1/berth/certs") as Listed[];
      assert.deepEqual(listed.map((c) => [c.name, c.fingerprint]), [["web", leaf.fingerprint]]);
    } finally {
      await stopAll(agents);
    }
    try {
      const [src, dst] = agents as [AgentProc, AgentProc];
      const dstKey = loadClusterKey(dst.dataDir)!;
      assert.notEqual(dstKey.fingerprint, loadClusterKey(src.dataDir)!.fingerprint);
      const db = new DatabaseSync(`${dst.dataDir}/store.db`, { readOnly: true });
      let keySealed: string;
      try {
        const row = db.prepare("SELECT data FROM edge_certs WHERE name='web'").get()!;
        keySealed = JSON.parse(String(row.data)).keySealed;
      } finally {
        db.close();
      }
      const pem = Deno.readTextFileSync(certs.leaf("web").key);
      const opened = openEdgeKey(dstKey, { name: "web", keySealed });
      assert.equal(
        createPrivateKey(opened).export({ format: "jwk" }).d,
        createPrivateKey(pem).export({ format: "jwk" }).d,
      );
      assert.throws(() => openEdgeKey(loadClusterKey(src.dataDir)!, { name: "web", keySealed }));
      for (const f of stateFiles(dst.dataDir)) {
        const bytes = Deno.readFileSync(f);
        for (const [what, needle] of keyNeedles(pem)) {
          assert.ok(!holds(bytes, needle), `${f} holds ${what} of the certificate's key`);
        }
      }
    } finally {
      await certs.remove();
      await Deno.remove(tmp, { recursive: true });
      for (const a of agents) Deno.removeSync(a.dataDir, { recursive: true });
    }
  },
);

Deno.test(
  "e2e certs: a member restarted without its cluster key fetches it from the others",
  e2e,
  async () => {
    const agents: AgentProc[] = [];
    try {
      agents.push(...await startCluster(3));
      const key = Deno.readTextFileSync(`${agents[0]!.dataDir}/cluster-key`);
      const m3 = agents[2]!;
      await m3.stop();
      Deno.removeSync(`${m3.dataDir}/cluster-key`);
      agents[2] = await startAgent({
        node: m3.node,
        host: m3.host,
        dataDir: m3.dataDir,
        ports: portsOf(m3),
        bootstrap: false,
        docker: false,
      });
      await waitFor("m3 fetched the cluster key", () => {
        try {
          return Deno.readTextFileSync(`${m3.dataDir}/cluster-key`) === key;
        } catch {
          return false;
        }
      });
      // The line comes after the file is written, through the agent's stderr pipe: wait for it.
      await waitFor(
        "m3 says where it fetched the key",
        () =>
          /fetched the cluster key [0-9a-f]{16} from 127\.0\.0\.[12]:\d+/.test(agents[2]!.log()),
      );
      assert.equal(Deno.statSync(`${m3.dataDir}/cluster-key`).mode! & 0o777, 0o600);
      assert.ok(!agents[2]!.log().includes(key.trim()), "the key is not logged");
      // It seals with it: a certificate put through it opens on the others (they list it).
      const certs = await makeEdgeCerts({ api: ["api.example.com"] });
      try {
        const leaf = certs.leaf("api");
        const add = await berthCli(agents[2]!, "cert", "add", "--name", "api", leaf.crt, leaf.key);
        assert.equal(add.code, 0, add.out);
        await waitFor(
          "m1 lists api",
          async () => (await apiJson(agents[0]!, "/v1/berth/certs?stale") as Listed[]).length === 1,
        );
      } finally {
        await certs.remove();
      }
    } finally {
      await stopAll(agents);
      for (const a of agents) Deno.removeSync(a.dataDir, { recursive: true });
    }
  },
);
