import assert from "node:assert/strict";
import { ApiServer } from "../api/mod.ts";
import { LocalCluster } from "../cluster/testing.ts";
import { ClusterKey, ClusterKeyBox, openEdgeKey } from "../pki/mod.ts";
import { testEdgeCert } from "../pki/testing.ts";
import { Store } from "../store/mod.ts";
import { VERSION } from "../version.ts";
import { main } from "./mod.ts";

type Run = (argv: string[]) => Promise<{ code: number; out: string; err: string }>;

/** Runs `fn` with `berth ARGV` against an agent (ACLs allow) keeping certificates, and a temp dir. */
async function withAgent(
  fn: (run: Run, store: Store, dir: string, box: ClusterKeyBox) => Promise<void>,
) {
  const store = Store.open(":memory:");
  const cluster = new LocalCluster(store, { node: "n1", address: "127.0.0.1:8300" });
  const box = new ClusterKeyBox(ClusterKey.generate());
  const api = new ApiServer({
    store,
    cluster,
    node: "n1",
    advertise: "127.0.0.1",
    version: VERSION,
    aclDefault: "allow",
    listen: { host: "127.0.0.1", port: 0 },
    secrets: box,
  });
  await api.start();
  const dir = Deno.makeTempDirSync({ prefix: "berth-cert-cli-" });
  const env = { BERTH_HTTP_ADDR: `http://127.0.0.1:${api.address.port}` };
  const run: Run = async (argv) => {
    let out = "";
    let err = "";
    const dec = new TextDecoder();
    const code = await main(argv, {
      stdout: (c) => void (out += typeof c === "string" ? c : dec.decode(c)),
      stderr: (t) => void (err += t),
      env,
    });
    return { code, out, err };
  };
  try {
    await fn(run, store, dir, box);
  } finally {
    await api.close();
    store.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("berth cert add|list|rm round trip: the key is stored sealed, list shows no key", async () => {
  await withAgent(async (run, store, dir, box) => {
    const web = testEdgeCert([
      "web.example.com",
      "*.example.com",
      "a.example.com",
      "b.example.com",
    ]);
    const api = testEdgeCert(["api.example.com"]);
    Deno.writeTextFileSync(`${dir}/web.crt`, web.certPem);
    Deno.writeTextFileSync(`${dir}/web.key`, web.keyPem);
    Deno.writeTextFileSync(`${dir}/api.crt`, api.certPem);
    Deno.writeTextFileSync(`${dir}/api.key`, api.keyPem);

    let r = await run([
      "cert",
      "add",
      "--name",
      "web",
      "--default",
      `${dir}/web.crt`,
      `${dir}/web.key`,
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      /^Stored certificate web for web\.example\.com, \*\.example\.com, a\.example\.com, b\.example\.com, valid until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(default\)\n$/,
    );
    assert.equal(openEdgeKey(box, store.edgeCert("web")!), web.keyPem);
    r = await run(["cert", "add", "--name", "api", `${dir}/api.crt`, `${dir}/api.key`]);
    assert.equal(r.code, 0, r.err);

    r = await run(["cert", "list"]);
    assert.equal(r.code, 0, r.err);
    const expires = new Date(store.edgeCert("web")!.notAfter).toISOString().replace(
      /\.\d{3}Z$/,
      "Z",
    );
    const lines = r.out.trimEnd().split("\n");
    assert.match(lines[0]!, /^Name +Names +Issuer +Expires +Source +Default$/);
    assert.match(
      lines[1]!,
      /^api +api\.example\.com +O=berth, CN=berth CA edge-test +\S+ +manual$/,
    );
    assert.match(
      lines[2]!,
      new RegExp(
        `^web +web\\.example\\.com,\\*\\.example\\.com,a\\.example\\.com,\\+1 +O=berth, CN=berth CA edge-test +${expires} +manual +yes$`,
      ),
    );
    assert.ok(!r.out.includes("PRIVATE") && !r.out.includes("bs1:"));
    r = await run(["cert", "list", "--json"]);
    assert.deepEqual(JSON.parse(r.out).map((c: { name: string }) => c.name), ["api", "web"]);

    r = await run(["cert", "rm", "api"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, "Removed certificate api\n");
    assert.deepEqual(store.edgeCerts().map((c) => c.name), ["web"]);
    r = await run(["cert", "rm", "api"]);
    assert.equal(r.code, 1);
    assert.equal(r.err, "berth cert rm: the agent answered 404: no certificate api\n");
  });
});

Deno.test("berth cert add refuses bad input with one line and stores nothing", async (t) => {
  await withAgent(async (run, store, dir) => {
    const web = testEdgeCert(["web.example.com"]);
    const other = testEdgeCert(["other.example.com"]);
    Deno.writeTextFileSync(`${dir}/web.crt`, web.certPem);
    Deno.writeTextFileSync(`${dir}/web.key`, web.keyPem);
    Deno.writeTextFileSync(`${dir}/other.key`, other.keyPem);
    Deno.writeTextFileSync(`${dir}/junk`, "junk\n");
    Deno.writeFileSync(`${dir}/big`, new Uint8Array(300 * 1024));
    const cases: [string, string[], number, RegExp][] = [
      [
        "no --name",
        ["cert", "add", `${dir}/web.crt`, `${dir}/web.key`],
        2,
        /^berth cert add: --name NAME is needed/,
      ],
      [
        "one file",
        ["cert", "add", "--name", "w", `${dir}/web.crt`],
        2,
        /^berth cert add: expected 2 arguments, got 1/,
      ],
      [
        "missing file",
        ["cert", "add", "--name", "w", `${dir}/nope.crt`, `${dir}/web.key`],
        1,
        /^berth cert add: cannot read the certificate file .*nope\.crt: /,
      ],
      [
        "a directory",
        ["cert", "add", "--name", "w", `${dir}/web.crt`, dir],
        1,
        /^berth cert add: cannot read the key file .*: not a file$/,
      ],
      [
        "too big",
        ["cert", "add", "--name", "w", `${dir}/big`, `${dir}/web.key`],
        1,
        /^berth cert add: cannot read the certificate file .*: over 262144 bytes$/,
      ],
      [
        "not PEM",
        ["cert", "add", "--name", "w", `${dir}/junk`, `${dir}/web.key`],
        1,
        /^berth cert add: the agent answered 400: certificate w: certPem: no PEM block/,
      ],
      [
        "wrong key",
        ["cert", "add", "--name", "w", `${dir}/web.crt`, `${dir}/other.key`],
        1,
        /^berth cert add: the agent answered 400: certificate w: keyPem: the key does not match the certificate's public key$/,
      ],
      [
        "bad name",
        ["cert", "add", "--name", "a/b", `${dir}/web.crt`, `${dir}/web.key`],
        1,
        /^berth cert add: the agent answered 400: certificate name "a\/b": expected/,
      ],
    ];
    for (const [what, argv, code, want] of cases) {
      await t.step(what, async () => {
        const r = await run(argv);
        assert.equal(r.code, code, r.err);
        assert.match(r.err.trimEnd(), want);
        assert.equal(r.err.trimEnd().split("\n").length, 1, r.err);
        assert.deepEqual(store.edgeCerts(), []);
      });
    }
  });
});
