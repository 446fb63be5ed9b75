/**
 * `berth snapshot save|restore`: a backup of services, nodes and KV streamed to or from a file
 * (owner-only, 0600). With `--include-secrets` the backup also carries the ACL policies and
 * tokens, the HTTPS certificates with their keys, the cluster CA and the join tokens, sealed with
 * a passphrase (`--passphrase-file FILE` or env BERTH_SNAPSHOT_PASSPHRASE); a restore given that
 * passphrase restores its ACL policies and tokens and its HTTPS certificates (keys sealed again
 * under the target cluster's key), never the CA or join tokens (README, "Security").
 *
 * @module
 */
import { ApiHttpError, ApiUnreachableError } from "../api/mod.ts";
import { errorText } from "../lib/error_text.ts";
import type { FlagSpec } from "./args.ts";
import type { CommandContext, CommandSpec } from "./commands.ts";

/** Longest passphrase file read. */
const PASSPHRASE_FILE_BYTES_MAX = 4096;

const PASSPHRASE_FILE: FlagSpec = {
  name: "passphrase-file",
  kind: "string",
  value: "FILE",
  help: "passphrase of the sealed secrets, first line of FILE (env BERTH_SNAPSHOT_PASSPHRASE)",
};

/** The passphrase from --passphrase-file or the environment; undefined when neither. */
function passphraseOf(ctx: CommandContext): string | undefined {
  const path = ctx.parsed.flags.get("passphrase-file") as string | undefined;
  if (path === undefined) {
    const env = ctx.env.BERTH_SNAPSHOT_PASSPHRASE;
    return env === undefined || env === "" ? undefined : env;
  }
  let text: string;
  try {
    const st = Deno.statSync(path);
    if (!st.isFile) throw new Error("not a file");
    if (st.size > PASSPHRASE_FILE_BYTES_MAX) {
      throw new Error(`over ${PASSPHRASE_FILE_BYTES_MAX} bytes`);
    }
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(`--passphrase-file ${path}: cannot read (${errorText(e)})`);
  }
  const line = text.split(/\r?\n/)[0] ?? "";
  if (line === "") throw new Error(`--passphrase-file ${path}: the first line is empty`);
  return line;
}

export const SNAPSHOT_COMMANDS: readonly CommandSpec[] = [
  {
    name: "snapshot save",
    usage: "berth snapshot save FILE [--include-secrets --passphrase-file FILE]",
    summary: "write a point-in-time backup of the replicated state to FILE",
    flags: [
      {
        name: "include-secrets",
        kind: "bool",
        help: "also ACL tokens and policies, HTTPS certificates with their keys, CA and join " +
          "tokens, sealed with the passphrase",
      },
      PASSPHRASE_FILE,
    ],
    args: [1, 1],
    remote: true,
    optional: true,
    async run(ctx) {
      const file = ctx.parsed.args[0]!;
      const include = ctx.parsed.flags.get("include-secrets") === true;
      let passphrase: string | undefined;
      try {
        passphrase = passphraseOf(ctx);
      } catch (e) {
        ctx.err(`berth snapshot save: ${errorText(e)}`);
        return 2;
      }
      if (include && passphrase === undefined) {
        ctx.err(
          "berth snapshot save: --include-secrets needs a passphrase: --passphrase-file FILE " +
            "or BERTH_SNAPSHOT_PASSPHRASE",
        );
        return 2;
      }
      if (!include && ctx.parsed.flags.has("passphrase-file")) {
        ctx.err("berth snapshot save: --passphrase-file goes with --include-secrets");
        return 2;
      }
      let bytes: number;
      try {
        bytes = await ctx.client.snapshotSave(file, {
          passphrase: include ? passphrase : undefined,
        });
      } catch (e) {
        if (e instanceof ApiUnreachableError || e instanceof ApiHttpError) throw e;
        ctx.err(`berth snapshot save: cannot write ${file} (${errorText(e)})`);
        return 1;
      }
      if (ctx.json) {
        ctx.out(JSON.stringify({ file, bytes, secrets: include }, null, 2) + "\n");
        return 0;
      }
      const sealed = include ? ", secrets sealed with the passphrase" : "";
      ctx.out(`Saved snapshot of ${bytes} bytes to ${file}${sealed}\n`);
      return 0;
    },
  },
  {
    name: "snapshot restore",
    usage: "berth snapshot restore FILE [--passphrase-file FILE]",
    summary: "replace the replicated state with a snapshot from FILE",
    flags: [PASSPHRASE_FILE],
    args: [1, 1],
    remote: true,
    optional: true,
    async run(ctx) {
      const file = ctx.parsed.args[0]!;
      let passphrase: string | undefined;
      try {
        passphrase = passphraseOf(ctx);
      } catch (e) {
        ctx.err(`berth snapshot restore: ${errorText(e)}`);
        return 2;
      }
      try {
        const st = await Deno.stat(file);
        if (!st.isFile) throw new Error("not a file");
      } catch (e) {
        ctx.err(`berth snapshot restore: cannot read ${file} (${errorText(e)})`);
        return 1;
      }
      const secrets = await ctx.client.snapshotRestore(file, { passphrase });
      if (ctx.json) {
        ctx.out(JSON.stringify({ file, restored: true, secrets }, null, 2) + "\n");
        return 0;
      }
      const note = secrets === "restored"
        ? ", with its ACL policies and tokens and HTTPS certificates"
        : secrets === "kept"
        ? "; its sealed secrets were not restored (no passphrase): ACL tokens and HTTPS " +
          "certificates unchanged"
        : "";
      ctx.out(`Restored snapshot from ${file}${note}\n`);
      return 0;
    },
  },
];
