/**
 * The `berth` command line. `berth agent [flags]` runs the agent (through the injected
 * `runAgent`); every other command talks to a running agent's HTTP API at `--http-addr` (env
 * `BERTH_HTTP_ADDR`, default `http://127.0.0.1:8500`) with the token from `--token` (env
 * `BERTH_TOKEN`), and prints aligned tables, or JSON with `--json`.
 *
 * Commands: `agent`, `services`, `service NAME`, `kv get|put|delete|list KEY [VALUE]`
 * (`--cas INDEX`, `--recurse`, `--flags N`, `--separator S`), `status`, `members`, `version`,
 * `join ADDR…`, `leave`, `raft peers|transfer-leader [NODE]|remove-peer NODE`,
 * `snapshot save|restore FILE`, `lock PREFIX [-n N] -- CMD…`, `session list`. `berth --help`
 * and `berth COMMAND --help` explain each.
 *
 * Exit codes: 0 success, 1 the command failed (agent unreachable, error answer, missing key,
 * CAS mismatch), 2 a usage mistake (unknown command or flag, wrong arguments); each failure is
 * one line on stderr. A reader that closes stdout early (`berth members | head -1`) ends the
 * command quietly with 141, as SIGPIPE would.
 *
 * @example
 * ```sh
 * berth kv put config/db/url postgres://db:5432/app   # Success! Data written to: config/db/url
 * berth kv get config/db/url                          # postgres://db:5432/app
 * berth service web                                   # ID  Address  Node  Status  Tags  Output
 * berth members --json
 * ```
 *
 * ```ts
 * import { main, processIo } from "./cli/mod.ts";
 * Deno.exit(await main(Deno.args, processIo(runAgent)));
 * ```
 *
 * @module
 */
export {
  type CliIo,
  EXIT_FAILURE,
  EXIT_STDOUT_CLOSED,
  EXIT_USAGE,
  main,
  processIo,
} from "./main.ts";
export { COMMANDS } from "./commands.ts";
export { formatTable } from "./table.ts";
