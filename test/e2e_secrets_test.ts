/**
 * End to end: secrets stay where they belong. After a bootstrap, a join token, an ACL token and
 * a snapshot saved with secrets, no agent's log holds a token secret, a token hash or a private
 * key, and every file in the data directories that holds one is owner-only. Real processes, no
 * Docker.
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
  const secrets: string[] = [];
  let passphraseFile = "";
  try {
    const management = Deno.readTextFileSync(`${a.dataDir}/management-token`).trim();
    secrets.push(management, sha256(management));
    const acl = await api(a, management, "PUT", "/v1/acl/token", { Description: "ci" });
    assert.equal(acl.status, 200, acl.text);
    const aclSecret = String(acl.json().SecretID);
    secrets.push(aclSecret, sha256(aclSecret));
    const join = await api(a, management, "POST", "/v1/berth/tokens", { ttl: "1h" });
    // A cluster with its CA makes join tokens; one without (--tls off) says so.
    if (join.status === 200) {
      const line = String(join.json().token);
      const secret = line.split("::")[0]!.split(".")[1]!;
      secrets.push(line, secret, sha256(secret));
    } else {
      assert.match(join.text, /join tokens need the cluster CA/);
    }
    for (let i = 0; i < 24; i++) {
      const put = await api(a, management, "PUT", `/v1/kv/k${i}`, "v");
      assert.equal(put.status, 200, put.text);
    }
    passphraseFile = `${Deno.makeTempDirSync()}/pass`;
    Deno.writeTextFileSync(passphraseFile, "correct horse battery\n");
    secrets.push("correct horse battery");
    const snapshot = `${a.dataDir}/backup.snap`;
    const io = {
      stdout: () => {},
      stderr: (t: string) => void assert.fail(t),
      env: { BERTH_HTTP_ADDR: a.httpUrl, BERTH_TOKEN: management },
    };
    const saved = await main(
      ["snapshot", "save", snapshot, "--include-secrets", "--passphrase-file", passphraseFile],
      io,
    );
    assert.equal(saved, 0);
  } finally {
    await a.stop();
  }
  const caKey = caKeyOf(a.dataDir);
  if (caKey !== undefined) {
    secrets.push(...caKey.split("\n").filter((l) => l !== "" && !l.startsWith("-----")));
  }
  const log = a.log();
  assert.match(log, /up; api http/);
  for (const s of [...secrets, "PRIVATE KEY"]) {
    assert.ok(!log.includes(s), `the agent's log shows ${s.slice(0, 10)}…`);
  }
  const files = filesUnder(a.dataDir);
  const latin = (b: Uint8Array) => new TextDecoder("latin1").decode(b);
  const holding = files.filter((f) =>
    f.path.endsWith(".db") || [...secrets, "PRIVATE KEY"].some((s) => latin(f.bytes).includes(s))
  );
  for (const name of ["management-token", "store.db", "raft.db", "backup.snap"]) {
    assert.ok(files.some((f) => f.path.endsWith(`/${name}`)), `${name} in the data dir`);
  }
  assert.ok(
    holding.some((f) => f.path.includes("/snapshots/")),
    `a Raft snapshot file holds the token hashes: ${files.map((f) => f.path).join(" ")}`,
  );
  const named = /\/(node\.key|join-token|[^/]*\.snap)$/;
  for (const f of [...holding, ...files.filter((f) => named.test(f.path))]) {
    assert.equal(f.mode, 0o600, `${f.path} is ${f.mode.toString(8)}`);
  }
  assert.equal(Deno.statSync(a.dataDir).mode! & 0o777, 0o700);
  Deno.removeSync(passphraseFile.replace(/\/pass$/, ""), { recursive: true });
  Deno.removeSync(a.dataDir, { recursive: true });
});
