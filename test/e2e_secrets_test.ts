/**
 * End to end: secrets stay where they belong. After a bootstrap, an ACL token, a join token, a
 * member joining with it, Raft snapshots and a user snapshot saved with secrets, no agent's log
 * holds a token secret, a token hash, the CA key or a member key, and every file in the data
 * directories that holds one is owner-only. Real processes, no Docker.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { type AgentProc, startAgent } from "./harness.ts";
import { main } from "../src/cli/mod.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

async function api(a: AgentProc, token: string, method: string, path: string, body?: unknown) {
  const r = await fetch(`${a.httpUrl}${path}`, {
    method,
    headers: { "X-Consul-Token": token },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, json: () => JSON.parse(text), text };
}

/** Every file under `dir` (recursively) with its mode and bytes. */
function filesUnder(dir: string): { path: string; mode: number; bytes: Uint8Array }[] {
  const out: { path: string; mode: number; bytes: Uint8Array }[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...filesUnder(path));
    else if (e.isFile) {
      out.push({ path, mode: Deno.statSync(path).mode! & 0o777, bytes: Deno.readFileSync(path) });
    }
  }
  return out;
}

/** The CA key the store holds, if the cluster has one (read after the agent stopped). */
function caKeyOf(dataDir: string): string | undefined {
  const db = new DatabaseSync(`${dataDir}/store.db`, { readOnly: true });
  try {
    const has = db.prepare("SELECT 1 FROM sqlite_master WHERE name='pki'").get();
    if (has === undefined) return undefined;
    const row = db.prepare("SELECT value FROM pki WHERE key='ca_key'").get();
    return row === undefined ? undefined : String(row.value);
  } finally {
    db.close();
  }
}

Deno.test("secrets appear in no log line and only in owner-only files", e2e, async () => {
  // Snapshots every 16 entries: the Raft snapshot files (CA key, token hashes) are checked too.
  const a = await startAgent({
    docker: false,
    aclDefault: "deny",
    args: ["--snapshot-entries", "16"],
  });
  const agents: AgentProc[] = [a];
  const secrets: string[] = [];
  const passDir = Deno.makeTempDirSync();
  try {
    const management = Deno.readTextFileSync(`${a.dataDir}/management-token`).trim();
    secrets.push(management, sha256(management));
    const bootstrapToken = Deno.readTextFileSync(`${a.dataDir}/join-token`).trim();
    secrets.push(...joinTokenSecrets(bootstrapToken));
    const acl = await api(a, management, "PUT", "/v1/acl/token", { Description: "ci" });
    assert.equal(acl.status, 200, acl.text);
    const aclSecret = String(acl.json().SecretID);
    secrets.push(aclSecret, sha256(aclSecret));
    const join = await api(a, management, "POST", "/v1/berth/tokens", { ttl: "1h" });
    assert.equal(join.status, 200, join.text);
    const joinToken = String(join.json().token);
    secrets.push(...joinTokenSecrets(joinToken));
    // A member joins with the token just made.
    agents.push(
      await startAgent({
        docker: false,
        bootstrap: false,
        join: [a.clusterAddr],
        joinToken,
        aclDefault: "deny",
      }),
    );
    for (let i = 0; i < 24; i++) {
      const put = await api(a, management, "PUT", `/v1/kv/k${i}`, "v");
      assert.equal(put.status, 200, put.text);
    }
    Deno.writeTextFileSync(`${passDir}/pass`, "correct horse battery\n");
    secrets.push("correct horse battery");
    const io = {
      stdout: () => {},
      stderr: (t: string) => void assert.fail(t),
      env: { BERTH_HTTP_ADDR: a.httpUrl, BERTH_TOKEN: management },
    };
    const saved = await main(
      [
        "snapshot",
        "save",
        `${a.dataDir}/backup.snap`,
        "--include-secrets",
        "--passphrase-file",
        `${passDir}/pass`,
      ],
      io,
    );
    assert.equal(saved, 0);
  } finally {
    for (const x of agents) await x.stop();
    Deno.removeSync(passDir, { recursive: true });
  }
  for (const x of agents) {
    const caKey = caKeyOf(x.dataDir);
    assert.ok(caKey !== undefined, `${x.node} has the cluster CA`);
    secrets.push(...caKey.split("\n").filter((l) => l !== "" && !l.startsWith("-----")));
    secrets.push(
      ...Deno.readTextFileSync(`${x.dataDir}/node.key`).split("\n")
        .filter((l) => l !== "" && !l.startsWith("-----")),
    );
  }
  for (const x of agents) {
    const log = x.log();
    assert.match(log, /up; api http/);
    for (const s of [...secrets, "PRIVATE KEY"]) {
      assert.ok(!log.includes(s), `${x.node}'s log shows ${s.slice(0, 10)}…`);
    }
    checkModes(x.dataDir, secrets);
  }
  const paths = filesUnder(a.dataDir).map((f) => f.path);
  assert.ok(paths.some((p) => p.endsWith("/backup.snap")), "the sealed snapshot was saved");
  assert.ok(paths.some((p) => p.includes("/snapshots/")), `a Raft snapshot: ${paths.join(" ")}`);
  for (const x of agents) Deno.removeSync(x.dataDir, { recursive: true });
});

/** A join token line and the parts of it that are secret: the secret and its hash. */
function joinTokenSecrets(line: string): string[] {
  const secret = line.split("::")[0]!.split(".")[1]!;
  assert.ok(secret.length >= 16, line.slice(0, 8));
  return [line, secret, sha256(secret)];
}

/**
 * Every file under `dir` holding one of `secrets` or a private key, and every store, Raft log,
 * snapshot, key and token file, is 0600; the directory 0700.
 */
function checkModes(dir: string, secrets: string[]): void {
  const files = filesUnder(dir);
  const latin = (b: Uint8Array) => new TextDecoder("latin1").decode(b);
  const named = /\/(node\.key|join-token|management-token|[^/]*\.snap|[^/]*\.db)$/;
  const holding = files.filter((f) =>
    named.test(f.path) || [...secrets, "PRIVATE KEY"].some((s) => latin(f.bytes).includes(s))
  );
  for (const name of ["store.db", "raft.db", "node.key"]) {
    assert.ok(files.some((f) => f.path.endsWith(`/${name}`)), `${name} in ${dir}`);
  }
  for (const f of holding) assert.equal(f.mode, 0o600, `${f.path} is ${f.mode.toString(8)}`);
  assert.equal(Deno.statSync(dir).mode! & 0o777, 0o700);
}
