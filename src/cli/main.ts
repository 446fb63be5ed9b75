/**
 * `berth` entry: dispatches argv to `agent` (the injected runAgent) or to a client command,
 * turns usage mistakes into one line and exit code 2, and an unreachable or refusing agent into
 * one line and exit code 1.
 *
 * @module
 */
import {
  ApiClient,
  ApiHttpError,
  ApiUnreachableError,
  DEFAULT_HTTP_ADDR,
  readCaFile,
} from "../api/mod.ts";
import { errorText } from "../lib/error_text.ts";
import { agentHelp } from "../config.ts";
import { type FlagSpec, GLOBAL_FLAGS, parseArgs, UsageError } from "./args.ts";
import { COMMANDS as CORE_COMMANDS, type CommandSpec } from "./commands.ts";
import { LOCK_COMMANDS } from "./lock_command.ts";
import { TOKEN_COMMANDS } from "./token_command.ts";
import { ACME_COMMANDS } from "./acme_command.ts";
import { CERT_COMMANDS } from "./cert_command.ts";
import { ACL_COMMANDS } from "./acl_command.ts";
import { SNAPSHOT_COMMANDS } from "./snapshot_commands.ts";
import { EXPLAIN_COMMANDS } from "./explain_command.ts";

/** Every client command, in the order help lists them. */
const COMMANDS: readonly CommandSpec[] = [
  ...CORE_COMMANDS,
  ...EXPLAIN_COMMANDS,
  ...SNAPSHOT_COMMANDS,
  ...LOCK_COMMANDS,
  ...TOKEN_COMMANDS,
  ...CERT_COMMANDS,
  ...ACME_COMMANDS,
  ...ACL_COMMANDS,
];

/**
 * The ACL token to send, Consul's order: `--token`, `--token-file`, env `BERTH_TOKEN`, env
 * `BERTH_TOKEN_FILE`; null for none. Throws one line when the file cannot be read or is empty.
 */
function tokenOf(
  parsed: { flags: Map<string, unknown> },
  env: Record<string, string | undefined>,
): string | null {
  const flag = parsed.flags.get("token") as string | undefined;
  if (flag !== undefined) return flag;
  const file = parsed.flags.get("token-file") as string | undefined;
  if (file !== undefined) return readTokenFile(file);
  if (env.BERTH_TOKEN) return env.BERTH_TOKEN;
  if (env.BERTH_TOKEN_FILE) return readTokenFile(env.BERTH_TOKEN_FILE);
  return null;
}

function readTokenFile(path: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(`cannot read the token file ${path}: ${errorText(e)}`);
  }
  const token = text.trim();
  if (token === "") throw new Error(`the token file ${path} is empty`);
  return token;
}

export interface CliIo {
  /** Writes exactly what it is given (values may be binary). */
  stdout: (chunk: string | Uint8Array) => void;
  /** Writes exactly what it is given. */
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  /** Runs `berth agent` with the arguments after `agent`; returns the exit code. */
  runAgent?: (argv: string[]) => Promise<number>;
}

/** Exit code of a usage mistake (unknown command or flag, wrong arguments). */
export const EXIT_USAGE = 2;
/** Exit code of a failed command (agent unreachable, error answer, missing key). */
export const EXIT_FAILURE = 1;
/**
 * Exit code when the reader of stdout went away (`berth status | head -1`): what a process
 * killed by SIGPIPE reports (128 + 13), so `set -o pipefail` scripts see the same as with other
 * tools; nothing is printed.
 */
export const EXIT_STDOUT_CLOSED = 141;

/** stdout's reader closed the pipe; main() ends quietly with EXIT_STDOUT_CLOSED. */
export class StdoutClosedError extends Error {
  override name = "StdoutClosedError";
}

/** Command groups: `berth GROUP SUB …`; a group may hold groups (`acl policy`). */
const GROUPS = [
  "kv",
  "raft",
  "snapshot",
  "session",
  "token",
  "acl",
  "acl policy",
  "acl token",
  "cert",
];

function writeAll(file: { writeSync(p: Uint8Array): number }, chunk: string | Uint8Array) {
  let bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;
  while (bytes.byteLength > 0) bytes = bytes.subarray(file.writeSync(bytes));
}

/**
 * Standard streams and the process environment. A closed stdout throws StdoutClosedError (main()
 * ends quietly); a closed stderr swallows the write (there is nowhere left to report).
 */
export function processIo(runAgent?: (argv: string[]) => Promise<number>): CliIo {
  return {
    stdout: (c) => {
      try {
        writeAll(Deno.stdout, c);
      } catch (e) {
        if (e instanceof Deno.errors.BrokenPipe) throw new StdoutClosedError("stdout closed");
        throw e;
      }
    },
    stderr: (t) => {
      try {
        writeAll(Deno.stderr, t);
      } catch (e) {
        if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
      }
    },
    env: Deno.env.toObject(),
    runAgent,
  };
}

function flagLines(flags: readonly FlagSpec[]): string[] {
  return flags.map((f) => {
    const arg = f.kind === "bool" ? "" : f.kind === "uint" ? " N" : ` ${f.value ?? "VALUE"}`;
    const short = f.short === undefined ? "" : `-${f.short}, `;
    return `  ${(short + "--" + f.name + arg).padEnd(20)} ${f.help}`;
  });
}

function topHelp(): string {
  const lines = [
    "Usage: berth COMMAND [flags]",
    "",
    "Commands:",
    `  ${"agent".padEnd(22)} run the agent (berth agent --help for its flags)`,
    ...COMMANDS.map((c) => `  ${c.name.padEnd(22)} ${c.summary}`),
    "",
    "Client flags (every command but agent; version takes only --json and --help):",
    ...flagLines(GLOBAL_FLAGS),
    "",
    "Run berth COMMAND --help for a command's usage.",
  ];
  return lines.join("\n") + "\n";
}

function groupHelp(group: string): string {
  const subs = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  return [
    `Usage: berth ${group} SUBCOMMAND [flags]`,
    "",
    ...subs.map((c) => `  ${c.usage.padEnd(48)} ${c.summary}`),
    "",
  ].join("\n");
}

function commandHelp(c: CommandSpec): string {
  const flags = c.remote
    ? [...c.flags, ...GLOBAL_FLAGS]
    : [...c.flags, ...GLOBAL_FLAGS.filter((f) => f.name === "json" || f.name === "help")];
  return [`Usage: ${c.usage}`, "", c.summary, "", "Flags:", ...flagLines(flags), ""].join("\n");
}

/** `127.0.0.1:8500` → `http://127.0.0.1:8500`; UsageError when it is no http(s) URL. */
function normalizeHttpAddr(addr: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(addr) ? addr : `http://${addr}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`--http-addr ${addr}: expected an address like http://127.0.0.1:8500`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`--http-addr ${addr}: expected an http:// or https:// address`);
  }
  return `${url.protocol}//${url.host}`;
}

/**
 * Runs `berth ARGV…`; resolves with the process exit code (EXIT_STDOUT_CLOSED, quietly, when
 * stdout's reader went away).
 */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  try {
    return await run(argv, io);
  } catch (e) {
    if (e instanceof StdoutClosedError) return EXIT_STDOUT_CLOSED;
    throw e;
  }
}

async function run(argv: string[], io: CliIo): Promise<number> {
  const usage = (text: string) => {
    io.stderr(`${text}\n`);
    return EXIT_USAGE;
  };
  const first = argv[0];
  if (first === undefined) {
    io.stderr(topHelp());
    return EXIT_USAGE;
  }
  if (first === "--help" || first === "-h" || first === "help") {
    io.stdout(topHelp());
    return 0;
  }
  if (first === "--version") return run(["version", ...argv.slice(1)], io);
  if (first === "agent") {
    const rest = argv.slice(1);
    if (rest.includes("--help") || rest.includes("-h")) {
      io.stdout(agentHelp() + "\n");
      return 0;
    }
    if (io.runAgent === undefined) {
      io.stderr("berth agent: the agent is not available in this entry point\n");
      return EXIT_FAILURE;
    }
    return await io.runAgent(rest);
  }

  let name = first;
  let rest = argv.slice(1);
  while (GROUPS.includes(name)) {
    const group = name;
    const sub = rest[0];
    if (sub === "--help" || sub === "-h") {
      io.stdout(groupHelp(group));
      return 0;
    }
    if (sub === undefined || sub.startsWith("-")) {
      io.stderr(groupHelp(group));
      return EXIT_USAGE;
    }
    name = `${group} ${sub}`;
    rest = rest.slice(1);
    if (!COMMANDS.some((c) => c.name === name || c.name.startsWith(`${name} `))) {
      return usage(`berth ${group}: unknown subcommand "${sub}" (see berth ${group} --help)`);
    }
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (cmd === undefined) {
    return usage(`berth: unknown command "${first.slice(0, 60)}" (see berth --help)`);
  }

  const specs = cmd.remote
    ? [...cmd.flags, ...GLOBAL_FLAGS]
    : [...cmd.flags, ...GLOBAL_FLAGS.filter((f) => f.name === "json" || f.name === "help")];
  let baseUrl: string;
  let parsed;
  try {
    parsed = parseArgs(rest, specs);
    if (parsed.flags.get("help") === true) {
      io.stdout(commandHelp(cmd));
      return 0;
    }
    const [min, max] = cmd.args;
    const n = parsed.args.length;
    if (n < min || n > max) {
      throw new UsageError(
        `expected ${
          min === max ? min : max === Infinity ? `at least ${min}` : `${min} to ${max}`
        } ` +
          `argument${max === 1 ? "" : "s"}, got ${n}: ${cmd.usage}`,
      );
    }
    const addr = (parsed.flags.get("http-addr") as string | undefined) ??
      (io.env.BERTH_HTTP_ADDR || DEFAULT_HTTP_ADDR);
    baseUrl = normalizeHttpAddr(addr);
  } catch (e) {
    if (e instanceof UsageError) {
      return usage(`berth ${name}: ${e.message} (see berth ${name} --help)`);
    }
    throw e;
  }
  let token: string | null;
  try {
    token = tokenOf(parsed, io.env);
  } catch (e) {
    return usage(`berth ${name}: ${errorText(e)}`);
  }
  let caCertPem: string | null = null;
  if (cmd.remote && io.env.BERTH_CACERT) {
    try {
      caCertPem = readCaFile(io.env.BERTH_CACERT);
    } catch (e) {
      return usage(`berth ${name}: ${errorText(e)}`);
    }
  }
  const client = new ApiClient(baseUrl, { token, caCertPem });
  try {
    return await cmd.run({
      client,
      parsed,
      json: parsed.flags.get("json") === true,
      out: io.stdout,
      err: (line) => io.stderr(`${line}\n`),
      name,
      env: io.env,
    });
  } catch (e) {
    if (e instanceof ApiUnreachableError) {
      io.stderr(`berth: ${e.message}${e.tls ? "" : "; is `berth agent` running?"}\n`);
      return EXIT_FAILURE;
    }
    if (e instanceof ApiHttpError) {
      if (cmd.optional && routeMissing(e)) {
        io.stderr(
          `berth ${name}: not supported by the agent at ${baseUrl} (${e.status}: ${e.message})\n`,
        );
      } else {
        io.stderr(`berth ${name}: the agent answered ${e.status}: ${e.message}\n`);
      }
      return EXIT_FAILURE;
    }
    throw e;
  } finally {
    client.close();
  }
}

/**
 * Whether an error answer means the agent lacks the route (an older agent): 501, or a 404 no
 * route gave (the API's `no route for …`, or a bare 404 from elsewhere). A 404 a route gave
 * itself (`no join token ID`) is that route's answer.
 */
function routeMissing(e: ApiHttpError): boolean {
  if (e.status === 501) return true;
  return e.status === 404 &&
    /^(no route for |HTTP 404$|404 (page )?not found$)/i.test(e.message.trim());
}
