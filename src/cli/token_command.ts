/**
 * `berth token create|list|revoke`: join tokens through the agent's API (src/api/tokens.ts).
 * `create` prints the one line `--join-token` takes (the only time the secret is shown); `list`
 * shows id, created, expires, uses left, revoked and description.
 *
 * @module
 */
import type { CommandContext, CommandSpec } from "./commands.ts";
import { formatTable } from "./table.ts";
import type { JoinTokenInfo } from "../store/mod.ts";

/** A time for the table: ISO without milliseconds, or `never` / `-`. */
function when(ms: number | null, none: string): string {
  return ms === null ? none : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Prints `value` as indented JSON (`--json`); exit code 0. */
export function print(ctx: CommandContext, value: unknown): number {
  ctx.out(JSON.stringify(value, null, 2) + "\n");
  return 0;
}

export const TOKEN_COMMANDS: readonly CommandSpec[] = [
  {
    name: "token create",
    usage: "berth token create [--ttl 1h] [--uses N] [--description D]",
    summary: "make a join token (printed once: the line --join-token takes)",
    flags: [
      {
        name: "ttl",
        kind: "string",
        value: "DURATION",
        help: "expires after this (default 24h; 0: never)",
      },
      { name: "uses", kind: "uint", help: "joins it allows (default any number)" },
      { name: "description", kind: "string", value: "D", help: "a note shown by token list" },
    ],
    args: [0, 0],
    remote: true,
    optional: true,
    async run(ctx) {
      const f = ctx.parsed.flags;
      const t = await ctx.client.tokenCreate({
        ...(f.has("ttl") ? { ttl: String(f.get("ttl")) } : {}),
        ...(f.has("uses") ? { uses: f.get("uses") as number } : {}),
        ...(f.has("description") ? { description: String(f.get("description")) } : {}),
      });
      if (ctx.json) return print(ctx, t);
      ctx.out(`${t.token}\n`);
      ctx.err(
        `berth token create: token ${t.id}, expires ${when(t.expires, "never")}, ` +
          `uses ${t.usesLeft ?? "unlimited"}; it is not shown again`,
      );
      return 0;
    },
  },
  {
    name: "token list",
    usage: "berth token list",
    summary: "join tokens: id, created, expires, uses left, revoked",
    flags: [],
    args: [0, 0],
    remote: true,
    optional: true,
    async run(ctx) {
      const list: JoinTokenInfo[] = await ctx.client.tokens();
      if (ctx.json) return print(ctx, list);
      ctx.out(formatTable(
        ["ID", "Created", "Expires", "Uses left", "Revoked", "Description"],
        list.map((t) => [
          t.id,
          when(t.created, "-"),
          when(t.expires, "never"),
          t.usesLeft === null ? "unlimited" : String(t.usesLeft),
          when(t.revokedAt, "-"),
          t.description,
        ]),
      ));
      return 0;
    },
  },
  {
    name: "token revoke",
    usage: "berth token revoke ID",
    summary: "revoke a join token (it joins nobody from then on)",
    flags: [],
    args: [1, 1],
    remote: true,
    optional: true,
    async run(ctx) {
      const id = ctx.parsed.args[0]!;
      await ctx.client.tokenRevoke(id);
      return ctx.json ? print(ctx, { revoked: id }) : (ctx.out(`Revoked join token ${id}\n`), 0);
    },
  },
];
