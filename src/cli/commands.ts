/**
 * The client commands: each talks to a running agent through ApiClient and prints a table,
 * plain lines, or JSON with `--json`.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import type { ApiClient } from "../api/mod.ts";
import type { MemberStatus } from "../cluster/mod.ts";
import { VERSION } from "../version.ts";
import type { FlagSpec, Parsed } from "./args.ts";
import { formatTable } from "./table.ts";

export interface CommandContext {
  client: ApiClient;
  parsed: Parsed;
  json: boolean;
  out: (chunk: string | Uint8Array) => void;
  err: (line: string) => void;
  /** The command's name for messages: `kv get`. */
  name: string;
  /** The environment (BERTH_SNAPSHOT_PASSPHRASE). */
  env: Record<string, string | undefined>;
}

export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  flags: FlagSpec[];
  /** Positional arguments: at least min, at most max (Infinity: any). */
  args: [number, number];
  /** Talks to the agent (needs --http-addr); false for purely local commands. */
  remote: boolean;
  /** Routes this command needs that an agent may lack: 404/501 reads "not supported". */
  optional?: boolean;
  run(ctx: CommandContext): Promise<number>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Prints `value` as indented JSON (`--json`); exit code 0. */
export function json(ctx: CommandContext, value: unknown): number {
  ctx.out(JSON.stringify(value, null, 2) + "\n");
  return 0;
}

/** A contact age: `12ms`, `3.4s`, or `never` (null). */
function ago(ms: number | null): string {
  return ms === null ? "never" : ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

/** Members as a table; the contact column says `(local)` when no leader gave its view. */
/** What `members` and `raft peers` print for an agent that is in no cluster yet. */
const NO_CLUSTER_HINT = "this member is in no cluster yet: start with --bootstrap or " +
  "--join, or run `berth join ADDR`\n";

/** The members by name; the hint when there are none. */
function membersTable(members: MemberStatus[]): string {
  if (members.length === 0) return NO_CLUSTER_HINT;
  const local = members.some((m) => m.contactFrom === "local");
  const sorted = members.toSorted((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return formatTable(
    ["Node", "Address", "Role", "State", local ? "Last contact (local)" : "Last contact", "Status"],
    sorted.map((m) => [m.name, m.address, m.role, m.state, ago(m.lastContactMs), m.status]),
  );
}

function sqliteVersion(): string {
  const db = new DatabaseSync(":memory:");
  try {
    return String((db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v);
  } finally {
    db.close();
  }
}

const KV_FLAGS = {
  cas: { name: "cas", kind: "uint", help: "write/delete only if the key's ModifyIndex is this" },
  recurse: { name: "recurse", kind: "bool", help: "every key under KEY as a prefix" },
  flags: { name: "flags", kind: "uint", help: "opaque integer stored with the value" },
  separator: {
    name: "separator",
    kind: "string",
    value: "SEP",
    help: "fold keys at this separator (e.g. /)",
  },
} as const satisfies Record<string, FlagSpec>;

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "services",
    usage: "berth services",
    summary: "list services with instance counts and tags",
    flags: [],
    args: [0, 0],
    remote: true,
    async run(ctx) {
      const [tags, instances] = await Promise.all([
        ctx.client.services(),
        ctx.client.instances(),
      ]);
      const rows = Object.keys(tags).sort().map((name) => {
        const mine = instances.filter((i) => i.service === name);
        return {
          service: name,
          instances: mine.length,
          passing: mine.filter((i) => i.status === "passing").length,
          tags: tags[name] ?? [],
        };
      });
      if (ctx.json) return json(ctx, rows);
      ctx.out(formatTable(
        ["Service", "Instances", "Passing", "Tags"],
        rows.map((r) => [r.service, String(r.instances), String(r.passing), r.tags.join(",")]),
      ));
      return 0;
    },
  },
  {
    name: "service",
    usage: "berth service NAME",
    summary: "instances of one service: address, port, node, health",
    flags: [],
    args: [1, 1],
    remote: true,
    async run(ctx) {
      const name = ctx.parsed.args[0]!;
      const list = await ctx.client.instances(name);
      if (ctx.json) return json(ctx, list);
      if (list.length === 0) {
        ctx.err(`berth service: no instances of service "${name}"`);
        return 1;
      }
      ctx.out(formatTable(
        ["ID", "Address", "Node", "Status", "Tags", "Output"],
        list.map((i) => [
          i.id,
          `${i.address.includes(":") ? `[${i.address}]` : i.address}:${i.port}`,
          i.node,
          i.status,
          i.tags.join(","),
          i.output.split("\n")[0]!.slice(0, 60),
        ]),
      ));
      return 0;
    },
  },
  {
    name: "kv get",
    usage: "berth kv get KEY [--recurse]",
    summary: "print a value (or KEY:VALUE lines under a prefix with --recurse)",
    flags: [KV_FLAGS.recurse],
    args: [1, 1],
    remote: true,
    async run(ctx) {
      const key = ctx.parsed.args[0]!;
      const recurse = ctx.parsed.flags.get("recurse") === true;
      const items = await ctx.client.kvGet(key, { recurse });
      if (ctx.json) {
        return json(
          ctx,
          items.map((e) => ({
            key: e.key,
            value: dec.decode(e.value),
            flags: e.flags,
            createIndex: e.createIndex,
            modifyIndex: e.modifyIndex,
          })),
        );
      }
      if (items.length === 0) {
        ctx.err(`berth kv get: no key ${recurse ? "under" : ""}${recurse ? " " : ""}"${key}"`);
        return 1;
      }
      if (recurse) {
        for (const e of items) ctx.out(`${e.key}:${dec.decode(e.value)}\n`);
      } else {
        ctx.out(items[0]!.value);
        ctx.out("\n");
      }
      return 0;
    },
  },
  {
    name: "kv put",
    usage: "berth kv put KEY VALUE [--cas INDEX] [--flags N]",
    summary: "store a value (use -- before a VALUE that starts with a dash)",
    flags: [KV_FLAGS.cas, KV_FLAGS.flags],
    args: [2, 2],
    remote: true,
    async run(ctx) {
      const [key, value] = ctx.parsed.args as [string, string];
      const cas = ctx.parsed.flags.get("cas") as number | undefined;
      const flags = ctx.parsed.flags.get("flags") as number | undefined;
      const ok = await ctx.client.kvPut(key, enc.encode(value), { cas, flags });
      if (ctx.json) return json(ctx, { key, written: ok }) + (ok ? 0 : 1);
      if (!ok) {
        ctx.err(`berth kv put: not written: "${key}" is not at index ${cas} (--cas)`);
        return 1;
      }
      ctx.out(`Success! Data written to: ${key}\n`);
      return 0;
    },
  },
  {
    name: "kv delete",
    usage: "berth kv delete KEY [--recurse | --cas INDEX]",
    summary: "delete a key, or every key under a prefix with --recurse",
    flags: [KV_FLAGS.cas, KV_FLAGS.recurse],
    args: [1, 1],
    remote: true,
    async run(ctx) {
      const key = ctx.parsed.args[0]!;
      const cas = ctx.parsed.flags.get("cas") as number | undefined;
      const recurse = ctx.parsed.flags.get("recurse") === true;
      const ok = await ctx.client.kvDelete(key, { cas, recurse });
      if (ctx.json) return json(ctx, { key, deleted: ok }) + (ok ? 0 : 1);
      if (!ok) {
        ctx.err(`berth kv delete: not deleted: "${key}" is not at index ${cas} (--cas)`);
        return 1;
      }
      ctx.out(
        recurse ? `Success! Deleted keys with prefix: ${key}\n` : `Success! Deleted key: ${key}\n`,
      );
      return 0;
    },
  },
  {
    name: "kv list",
    usage: "berth kv list [PREFIX] [--separator /]",
    summary: "list keys under a prefix",
    flags: [KV_FLAGS.separator],
    args: [0, 1],
    remote: true,
    async run(ctx) {
      const prefix = ctx.parsed.args[0] ?? "";
      const sep = ctx.parsed.flags.get("separator") as string | undefined;
      const keys = await ctx.client.kvKeys(prefix, sep);
      if (ctx.json) return json(ctx, keys);
      for (const k of keys) ctx.out(`${k}\n`);
      return 0;
    },
  },
  {
    name: "status",
    usage: "berth status",
    summary: "leader, term, commit and applied index, this node's role",
    flags: [],
    args: [0, 0],
    remote: true,
    async run(ctx) {
      const s = await ctx.client.status();
      if (ctx.json) return json(ctx, s);
      const rows: [string, string][] = [
        ["Node", s.node],
        ["Role", s.role],
        ["Leader", s.leader ?? "(none)"],
        ["Leader address", s.leaderAddress ?? "-"],
        ["Term", String(s.term)],
        ["Commit index", String(s.commitIndex)],
        ["Applied index", String(s.appliedIndex)],
        ["Last contact", ago(s.lastContactMs)],
      ];
      const w = Math.max(...rows.map(([k]) => k.length)) + 1;
      for (const [k, v] of rows) ctx.out(`${(k + ":").padEnd(w)}  ${v}\n`);
      return 0;
    },
  },
  {
    name: "members",
    usage: "berth members",
    summary: "cluster members: address, role, raft state, last contact, status",
    flags: [],
    args: [0, 0],
    remote: true,
    async run(ctx) {
      const members = await ctx.client.members();
      if (ctx.json) return json(ctx, members);
      ctx.out(membersTable(members));
      return 0;
    },
  },
  {
    name: "version",
    usage: "berth version",
    summary: "berth, Deno and SQLite versions",
    flags: [],
    args: [0, 0],
    remote: false,
    run(ctx) {
      const v = { berth: VERSION, deno: Deno.version.deno, sqlite: sqliteVersion() };
      if (ctx.json) return Promise.resolve(json(ctx, v));
      ctx.out(`berth ${v.berth}\ndeno ${v.deno}\nsqlite ${v.sqlite}\n`);
      return Promise.resolve(0);
    },
  },
  {
    name: "join",
    usage: "berth join ADDR...",
    summary: "join the cluster that another agent (its cluster address) belongs to",
    flags: [],
    args: [1, Infinity],
    remote: true,
    optional: true,
    async run(ctx) {
      for (const addr of ctx.parsed.args) {
        await ctx.client.join(addr);
        if (!ctx.json) ctx.out(`Joined through ${addr}\n`);
      }
      return ctx.json ? json(ctx, { joined: ctx.parsed.args }) : 0;
    },
  },
  {
    name: "leave",
    usage: "berth leave",
    summary: "leave the cluster gracefully (hands off leadership first)",
    flags: [],
    args: [0, 0],
    remote: true,
    optional: true,
    async run(ctx) {
      await ctx.client.leave();
      return ctx.json ? json(ctx, { left: true }) : (ctx.out("Left the cluster\n"), 0);
    },
  },
  {
    name: "raft peers",
    usage: "berth raft peers",
    summary: "Raft members with role and state",
    flags: [],
    args: [0, 0],
    remote: true,
    optional: true,
    async run(ctx) {
      const peers = await ctx.client.raftPeers();
      if (ctx.json) return json(ctx, peers);
      ctx.out(membersTable(peers));
      return 0;
    },
  },
  {
    name: "raft transfer-leader",
    usage: "berth raft transfer-leader [NODE]",
    summary: "hand leadership to NODE (or the most up-to-date voter)",
    flags: [],
    args: [0, 1],
    remote: true,
    optional: true,
    async run(ctx) {
      const to = ctx.parsed.args[0];
      await ctx.client.transferLeader(to);
      if (ctx.json) return json(ctx, { transferred: true, to: to ?? null });
      ctx.out(`Leadership transfer to ${to ?? "the best voter"} started\n`);
      return 0;
    },
  },
  {
    name: "raft remove-peer",
    usage: "berth raft remove-peer NODE",
    summary: "remove a member that is gone for good",
    flags: [],
    args: [1, 1],
    remote: true,
    optional: true,
    async run(ctx) {
      const node = ctx.parsed.args[0]!;
      await ctx.client.removePeer(node);
      return ctx.json ? json(ctx, { removed: node }) : (ctx.out(`Removed ${node}\n`), 0);
    },
  },
];
