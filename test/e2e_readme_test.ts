/**
 * End to end: README's "A cluster" section runs as written. The commands are read from README.md
 * itself (so the README and this test cannot drift apart), with `berth` run as
 * `deno run <the compiled binary's permissions> src/main.ts` and the `/tmp/berth/` paths moved
 * into a temporary folder; `sleep N` becomes "until every agent started so far answers". Then the
 * members, the leader and the join are checked through the agents' APIs.
 *
 * The block uses README's fixed addresses (127.0.0.1–3, ports 8300/8500/8600/8080): run it
 * under the e2e lock, with no other agent on them.
 */
import assert from "node:assert/strict";
import { PERMISSIONS } from "./harness.ts";
import { readmeSection } from "./readme.ts";
import { waitFor } from "./wait.ts";

const MAIN = new URL("../src/main.ts", import.meta.url).pathname;
/** The folder README's commands keep their files in; replaced by a temporary one. */
const README_DIR = "/tmp/berth/";
/** Defaults of the flags README's agent lines may leave out (see `berth agent --help`). */
const FLAG_DEFAULTS: Record<string, string> = {
  http: "127.0.0.1:8500",
  dns: "127.0.0.1:8600",
  bind: "127.0.0.1:8300",
};
/** How long an agent may take to answer, and the cluster to settle. */
const START_TIMEOUT_MS = 60_000;

interface Line {
  env: Record<string, string>;
  argv: string[];
  background: boolean;
  text: string;
}

/** The commands of the first `sh` block of README's "A cluster" section, one per line. */
function clusterCommands(): Line[] {
  const section = readmeSection("A cluster");
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error('README "A cluster" has no ```sh block');
  const lines: Line[] = [];
  for (const raw of block.split("\n")) {
    const text = raw.replace(/(^|\s)#.*$/, "").trim();
    if (text === "") continue;
    // Each line is one simple command, so the block runs the same pasted into any shell.
    assert.doesNotMatch(
      text,
      /[|;<>`$]|&&/,
      `README cluster line is not a simple command: ${text}`,
    );
    const words = text.split(/\s+/);
    const background = words.at(-1) === "&";
    if (background) words.pop();
    const env: Record<string, string> = {};
    while (words.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(words[0]!)) {
      const [name, ...value] = words.shift()!.split("=");
      env[name!] = value.join("=");
    }
    lines.push({ env, argv: words, background, text });
  }
  return lines;
}

function flagValue(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? undefined : argv[i + 1];
}

/** The environment without BERTH_* settings of whoever runs the test. */
function cleanEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  for (const k of Object.keys(env)) if (k.startsWith("BERTH_")) delete env[k];
  return { ...env, NO_COLOR: "1" };
}

function addressFree(addr: string): boolean {
  const [host, port] = addr.split(":");
  try {
    const l = Deno.listen({ hostname: host!, port: Number(port) });
    l.close();
    return true;
  } catch {
    return false;
  }
}

interface Started {
  line: Line;
  http: string;
  child: Deno.ChildProcess;
  logPath: string;
  exited: boolean;
}

Deno.test({
  name: "e2e: README's cluster section runs as written (members, leader, join)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const lines = clusterCommands();
    for (const l of lines) {
      assert.ok(["berth", "sleep"].includes(l.argv[0]!), `not a berth command: ${l.text}`);
    }
    const agents = lines.filter((l) => l.argv[1] === "agent");
    assert.ok(agents.length >= 3, "README's cluster block starts three agents");
    for (const a of agents) {
      assert.equal(a.background, true, `an agent line ends with & so the paste goes on: ${a.text}`);
      for (const flag of ["http", "dns", "bind", "proxy-http", "proxy-https"]) {
        const addr = flagValue(a.argv, flag) ?? FLAG_DEFAULTS[flag];
        if (addr === undefined || addr === "off") continue;
        assert.ok(addressFree(addr), `${addr} (--${flag}) is in use; this test needs it`);
      }
    }

    const dir = Deno.makeTempDirSync({ prefix: "berth-readme-" });
    const env = cleanEnv();
    const started: Started[] = [];
    const logs = () =>
      started.map((s) => `--- ${s.line.argv.slice(0, 4).join(" ")}\n${readLog(s.logPath)}`)
        .join("\n");
    const ran = new Map<string, string>(); // line → stdout
    try {
      for (const line of lines) {
        const argv = line.argv.slice(1).map((w) => w.replaceAll(README_DIR, `${dir}/`));
        const cmdEnv = { ...env, ...line.env };
        if (line.argv[0] === "sleep") {
          // README waits a moment for the agents; here: until each one answers.
          for (const s of started) {
            await waitFor(`${s.line.argv.slice(0, 4).join(" ")} to answer`, async () => {
              if (s.exited) throw new Error(`it exited:\n${logs()}`);
              const r = await fetch(`http://${s.http}/v1/status/leader`);
              await r.body?.cancel();
              return r.ok;
            }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 100 });
          }
        } else if (line.background) {
          started.push(
            startBackground(line, argv, cmdEnv, `${dir}/agent-${started.length + 1}.log`),
          );
        } else {
          const out = await new Deno.Command(Deno.execPath(), {
            args: ["run", ...PERMISSIONS, MAIN, ...argv],
            env: cmdEnv,
            clearEnv: true,
            stdin: "null",
          }).output();
          const stdout = new TextDecoder().decode(out.stdout);
          const stderr = new TextDecoder().decode(out.stderr);
          assert.equal(out.code, 0, `${line.text}\n${stdout}${stderr}\n${logs()}`);
          ran.set(line.text, stdout);
        }
      }

      // Every agent's node is a member, and all of them follow one leader. The API refuses
      // what a token may not do: these reads send the management token --bootstrap wrote.
      const boot = agents.find((a) => a.argv.includes("--bootstrap"))!;
      const bootDir = flagValue(boot.argv, "data-dir")!.replaceAll(README_DIR, `${dir}/`);
      const token = Deno.readTextFileSync(`${bootDir}/management-token`).trim();
      const get = (url: string) => fetch(url, { headers: { "X-Consul-Token": token } });
      const names = agents.map((a) => flagValue(a.argv, "node")!);
      const first = started[0]!;
      await waitFor("every agent a member", async () => {
        const ms = await (await get(`http://${first.http}/v1/berth/members`)).json();
        const have = new Set((ms as { name: string }[]).map((m) => m.name));
        return names.every((n) => have.has(n));
      }, { timeoutMs: START_TIMEOUT_MS });
      const leaders = await waitFor("one leader seen by every agent", async () => {
        const seen = await Promise.all(started.map(async (s) => {
          const st = await (await get(`http://${s.http}/v1/berth/status`)).json();
          return st.leader as string | null;
        }));
        return seen.every((l) => l !== null && l === seen[0]) ? seen : undefined;
      }, { timeoutMs: START_TIMEOUT_MS });
      assert.ok(names.includes(leaders[0]!), `leader ${leaders[0]} is one of ${names}`);

      // The `berth join` line joined the agent it was sent to (it had no --join of its own).
      const join = lines.find((l) => l.argv[1] === "join");
      assert.ok(join !== undefined, "README's cluster block shows berth join");
      const joined = started.find((s) => `http://${s.http}` === join.env.BERTH_HTTP_ADDR);
      assert.ok(joined !== undefined, `berth join goes to one of the agents: ${join.text}`);
      assert.equal(flagValue(joined.line.argv, "join"), undefined);
      const self = await (await get(`http://${joined.http}/v1/berth/status`)).json();
      assert.ok(names.includes(self.node) && self.leader === leaders[0]);

      // `berth members` printed the cluster; `berth snapshot save` wrote its file.
      const membersOut = [...ran].find(([text]) => /^berth members\b/.test(text))?.[1] ?? "";
      assert.match(membersOut, new RegExp(`\\b${names[0]}\\b`));
      const save = lines.find((l) => l.argv[1] === "snapshot" && l.argv[2] === "save");
      if (save !== undefined) {
        const file = save.argv[3]!.replaceAll(README_DIR, `${dir}/`);
        assert.ok(Deno.statSync(file).size > 0, `${file} is empty`);
      }
    } finally {
      await stopAll(started);
    }
    Deno.removeSync(dir, { recursive: true });
  },
});

function startBackground(
  line: Line,
  argv: string[],
  env: Record<string, string>,
  logPath: string,
): Started {
  const log = Deno.openSync(logPath, { create: true, write: true });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSIONS, MAIN, ...argv],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const s: Started = {
    line,
    http: flagValue(line.argv, "http") ?? FLAG_DEFAULTS.http!,
    child,
    logPath,
    exited: false,
  };
  child.status.then(() => s.exited = true);
  (async () => {
    try {
      for await (const chunk of child.stderr) log.writeSync(chunk);
    } finally {
      log.close();
    }
  })();
  return s;
}

function readLog(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "(no log)";
  }
}

async function stopAll(started: Started[]): Promise<void> {
  for (const s of started) if (!s.exited) s.child.kill("SIGTERM");
  await Promise.all(started.map((s) => s.child.status));
}
