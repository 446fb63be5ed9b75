import assert from "node:assert/strict";
import { closeAll, member, rawPeer, type TestMember, until } from "../../test/clusters.ts";
import { TlsPeer } from "../../test/tls_peer.ts";
import { CLUSTER_KEY_FILE, ClusterKey, loadClusterKey } from "../pki/mod.ts";
import { CANDIDATE_FILE } from "./_cluster_key.ts";
import { RaftCluster } from "./raft_cluster.ts";
import { ClusterKeyBox } from "../pki/mod.ts";
import { Store } from "../store/mod.ts";

const enc = new TextEncoder();

/** Temp dirs, removed after `fn`. */
async function withDirs(n: number, fn: (dirs: string[]) => Promise<void>): Promise<void> {
  const dirs = Array.from({ length: n }, () => Deno.makeTempDirSync({ prefix: "berth-ckey-" }));
  try {
    await fn(dirs);
  } finally {
    for (const d of dirs) Deno.removeSync(d, { recursive: true });
  }
}

/** The key file's text in `dir`, for checking that no log line holds it. */
function keyHex(dir: string): string {
  return Deno.readTextFileSync(`${dir}/${CLUSTER_KEY_FILE}`).trim();
}

function assertNoKeyInLogs(ms: TestMember[], hex: string): void {
  for (const m of ms) for (const l of m.logs) assert.ok(!l.includes(hex), l);
}

Deno.test("RaftCluster cluster key: --bootstrap makes it (0600) and names its fingerprint in Raft", async () => {
  await withDirs(1, async ([dir]) => {
    const a = await member("a", "127.0.0.1", { bootstrap: true, tls: false, clusterKeyDir: dir });
    try {
      await until("a's box ready", () => a.box!.ready);
      const key = loadClusterKey(dir!)!;
      assert.equal(Deno.statSync(`${dir}/${CLUSTER_KEY_FILE}`).mode! & 0o777, 0o600);
      assert.equal(a.store.clusterKeyFingerprint(), key.fingerprint);
      assert.equal(a.box!.key()!.fingerprint, key.fingerprint);
      assertNoKeyInLogs([a], keyHex(dir!));
    } finally {
      await closeAll([a]);
    }
  });
});

Deno.test("RaftCluster cluster key: a joiner with TLS gets it in the enrollment answer", async () => {
  await withDirs(2, async ([da, db]) => {
    const a = await member("a", "127.0.0.1", {
      bootstrap: true,
      tls: { dir: da },
      clusterKeyDir: da,
    });
    await until("a CA in the store", () => a.store.pki.ca() !== undefined);
    const b = await member("b", "127.0.0.2", {
      join: [a.cluster.address],
      tls: { dir: db, joinToken: a.cluster.bootstrapToken! },
      clusterKeyDir: db,
    });
    try {
      await until("b's box ready", () => b.box!.ready);
      assert.equal(loadClusterKey(db!)!.fingerprint, loadClusterKey(da!)!.fingerprint);
      assert.equal(Deno.statSync(`${db}/${CLUSTER_KEY_FILE}`).mode! & 0o777, 0o600);
      assert.ok(
        b.logs.some((l) => /got the cluster key [0-9a-f]{16} with the enrollment answer/.test(l)),
        b.logs.join("\n"),
      );
      assert.ok(!b.logs.some((l) => /fetched the cluster key/.test(l)));
      const sealed = a.box!.seal(enc.encode("secret"), "edge-cert:x");
      assert.deepEqual(b.box!.open(sealed, "edge-cert:x"), enc.encode("secret"));
      assertNoKeyInLogs([a, b], keyHex(da!));
    } finally {
      await closeAll([b, a]);
    }
  });
});

Deno.test("RaftCluster cluster key: a member of a --tls off cluster fetches it from a member", async () => {
  await withDirs(2, async ([da, db]) => {
    const a = await member("a", "127.0.0.1", { bootstrap: true, tls: false, clusterKeyDir: da });
    const b = await member("b", "127.0.0.2", {
      join: [a.cluster.address],
      tls: false,
      clusterKeyDir: db,
    });
    try {
      await until("b's box ready", () => b.box!.ready);
      assert.equal(loadClusterKey(db!)!.fingerprint, a.store.clusterKeyFingerprint());
      assert.ok(
        b.logs.some((l) => /fetched the cluster key [0-9a-f]{16} from 127\.0\.0\.1:/.test(l)),
        b.logs.join("\n"),
      );
      assertNoKeyInLogs([a, b], keyHex(da!));
    } finally {
      await closeAll([b, a]);
    }
  });
});

Deno.test("RaftCluster cluster key: a cluster made before cluster keys gets one from its leader, then members fetch it", async () => {
  await withDirs(2, async ([da, db]) => {
    // The old version: no cluster key option.
    const old = await member("a", "127.0.0.1", {
      bootstrap: true,
      voters: 1,
      tls: false,
      dataDir: da,
    });
    await until("a leads", () => old.cluster.status().role === "leader");
    await old.cluster.propose({ type: "kv.put", key: "k", value: enc.encode("v"), flags: 0 });
    const port = old.cluster.bound.port;
    await closeAll([old]);
    assert.equal(loadClusterKey(da!), undefined);

    const a = await member("a", "127.0.0.1", {
      voters: 1,
      tls: false,
      dataDir: da,
      clusterKeyDir: da,
      port,
    });
    const b = await member("b", "127.0.0.2", {
      join: [a.cluster.address],
      tls: false,
      clusterKeyDir: db,
    });
    try {
      await until("a's box ready", () => a.box!.ready);
      await until("b's box ready", () => b.box!.ready);
      const fp = a.store.clusterKeyFingerprint()!;
      assert.equal(loadClusterKey(da!)!.fingerprint, fp);
      assert.equal(loadClusterKey(db!)!.fingerprint, fp);
      assert.equal(
        a.logs.filter((l) => /made the cluster key/.test(l)).length,
        1,
        a.logs.join("\n"),
      );
      assert.throws(() => Deno.statSync(`${da}/${CANDIDATE_FILE}`), Deno.errors.NotFound);
    } finally {
      await closeAll([b, a]);
    }
  });
});

Deno.test("RaftCluster cluster key: a leader's candidate left by a crash is the key it proposes", async () => {
  await withDirs(1, async ([da]) => {
    const old = await member("a", "127.0.0.1", {
      bootstrap: true,
      voters: 1,
      tls: false,
      dataDir: da,
    });
    await until("a leads", () => old.cluster.status().role === "leader");
    await closeAll([old]);
    const candidate = ClusterKey.generate();
    Deno.writeTextFileSync(`${da}/${CANDIDATE_FILE}`, candidate.text());
    const a = await member("a", "127.0.0.1", {
      voters: 1,
      tls: false,
      dataDir: da,
      clusterKeyDir: da,
    });
    try {
      await until("a's box ready", () => a.box!.ready);
      assert.equal(a.store.clusterKeyFingerprint(), candidate.fingerprint);
      assert.equal(loadClusterKey(da!)!.fingerprint, candidate.fingerprint);
      assert.throws(() => Deno.statSync(`${da}/${CANDIDATE_FILE}`), Deno.errors.NotFound);
    } finally {
      await closeAll([a]);
    }
  });
});

Deno.test("RaftCluster cluster key: a candidate the state does not name is dropped, and a key no member has is asked for, not made", async () => {
  await withDirs(1, async ([da]) => {
    const old = await member("a", "127.0.0.1", {
      bootstrap: true,
      voters: 1,
      tls: false,
      dataDir: da,
    });
    await until("a leads", () => old.cluster.status().role === "leader");
    // Another leader's key won (its holder is gone): the state names a key nobody here has.
    const winner = ClusterKey.generate();
    await old.cluster.propose({ type: "clusterkey.set", fingerprint: winner.fingerprint });
    const port = old.cluster.bound.port;
    await closeAll([old]);
    Deno.writeTextFileSync(`${da}/${CANDIDATE_FILE}`, ClusterKey.generate().text());
    const a = await member("a", "127.0.0.1", {
      voters: 1,
      tls: false,
      dataDir: da,
      clusterKeyDir: da,
      port,
    });
    try {
      await until(
        "a asks the members for the winner",
        () =>
          a.logs.some((l) => /no member gave the cluster key [0-9a-f]{16} .*; retrying/.test(l)),
      );
      assert.throws(() => Deno.statSync(`${da}/${CANDIDATE_FILE}`), Deno.errors.NotFound);
      assert.equal(loadClusterKey(da!), undefined);
      assert.equal(a.box!.ready, false);
      assert.equal(a.store.clusterKeyFingerprint(), winner.fingerprint);
      assert.ok(!a.logs.some((l) => /made the cluster key/.test(l)));
    } finally {
      await closeAll([a]);
    }
  });
});

Deno.test("RaftCluster cluster key: a member whose key file is not the cluster's never seals with it and says why", async () => {
  await withDirs(2, async ([da, db]) => {
    const foreign = ClusterKey.generate();
    Deno.writeTextFileSync(`${db}/${CLUSTER_KEY_FILE}`, foreign.text(), { mode: 0o600 });
    const a = await member("a", "127.0.0.1", { bootstrap: true, tls: false, clusterKeyDir: da });
    const b = await member("b", "127.0.0.2", {
      join: [a.cluster.address],
      tls: false,
      clusterKeyDir: db,
    });
    try {
      await until(
        "b's complaint",
        () => b.logs.some((l) => /cluster key [0-9a-f]{16} .* is not the cluster's/.test(l)),
      );
      assert.equal(b.box!.ready, false);
      assert.throws(() => b.box!.seal(enc.encode("x"), "edge-cert:x"), /is not the cluster's/);
      // a never hands its key to b's wrong one, nor takes b's.
      assert.notEqual(a.store.clusterKeyFingerprint(), foreign.fingerprint);
      assert.equal(loadClusterKey(db!)!.fingerprint, foreign.fingerprint, "the file is left alone");
    } finally {
      await closeAll([b, a]);
    }
  });
});

Deno.test("RaftCluster cluster key: clusterkey.get is refused to a non-member (plain TCP) and to an anonymous TLS peer", async () => {
  await withDirs(1, async ([da]) => {
    const a = await member("a", "127.0.0.1", { bootstrap: true, tls: false, clusterKeyDir: da });
    const peer = await rawPeer("127.0.0.9", {
      clusterId: a.cluster.identity()!.clusterId,
      nodeId: 99,
    });
    try {
      await until("a's box ready", () => a.box!.ready);
      await assert.rejects(
        peer.request(a.cluster.address, { t: "clusterkey.get" }, { timeoutMs: 2000 }),
        /the cluster key is for members only/,
      );
    } finally {
      await peer.close();
      await closeAll([a]);
    }
  });
  await withDirs(1, async ([da]) => {
    const a = await member("a", "127.0.0.1", {
      bootstrap: true,
      tls: { dir: da },
      clusterKeyDir: da,
    });
    const tlsPeer = await TlsPeer.connect(a.cluster.address, undefined);
    try {
      await until("a's box ready", () => a.box!.ready);
      tlsPeer.send({ k: "hello", v: 1, clusterId: "", nodeId: 0, address: "127.0.0.9:1" });
      assert.equal((await tlsPeer.next())?.k, "welcome");
      tlsPeer.send({ k: "req", id: 1, b: { t: "clusterkey.get" } });
      // The member closes a connection without a certificate that asks anything but enrollment.
      assert.equal(await tlsPeer.next(), null);
    } finally {
      tlsPeer.close();
      await closeAll([a]);
    }
  });
});

Deno.test("RaftCluster cluster key: on plain TCP clusterkey.get claiming a member's id is refused unless the cluster runs --tls off --dev (inClear), which is warned about", async () => {
  for (const inClear of [false, true]) {
    await withDirs(1, async ([da]) => {
      const a = await member("a", "127.0.0.1", {
        bootstrap: true,
        tls: false,
        clusterKeyDir: da,
        clusterKeyInClear: inClear,
      });
      try {
        await until("a's box ready", () => a.box!.ready);
        // Anyone on the network can claim a member's id in its hello on plain TCP.
        const peer = await rawPeer("127.0.0.9", {
          clusterId: a.cluster.identity()!.clusterId,
          nodeId: a.cluster.identity()!.id,
        });
        try {
          const asked = peer.request(a.cluster.address, { t: "clusterkey.get" }, {
            timeoutMs: 2000,
          });
          if (inClear) assert.ok(await asked);
          else await assert.rejects(asked, /the cluster key is given only over mutual TLS/);
        } finally {
          await peer.close();
        }
        const warned = a.logs.filter((l) => l.includes("travels in clear"));
        assert.equal(warned.length, inClear ? 1 : 0, a.logs.join("\n"));
      } finally {
        await closeAll([a]);
      }
    });
  }
});

Deno.test("RaftCluster cluster key: a key file that is not the one the state names is refused from the start", async () => {
  await withDirs(1, async ([dir]) => {
    const store = Store.open(":memory:");
    store.apply(1, { type: "clusterkey.set", fingerprint: ClusterKey.generate().fingerprint });
    const box = new ClusterKeyBox(ClusterKey.generate());
    const cluster = new RaftCluster({
      store,
      raftPath: ":memory:",
      node: "a",
      bind: { host: "127.0.0.1", port: 0 },
      advertise: "127.0.0.1",
      bootstrap: false,
      join: [],
      voters: 3,
      nodeTimeoutMs: 10_000,
      clusterKey: { box, dir: dir! },
      log: () => {},
    });
    try {
      // Not started: no tick has run.
      assert.throws(() => box.seal(enc.encode("x"), "edge-cert:x"), /is not the cluster's/);
    } finally {
      await cluster.close();
      store.close();
    }
  });
});
