/**
 * `berth acl policy create|list|delete` and `berth acl token create|update|list|delete`: the agent's
 * `/v1/acl/*` endpoints (src/api/acl_endpoints.ts), with the flags of `consul acl …`. They need
 * a management token (`--token` or BERTH_TOKEN; `--bootstrap` writes one to
 * `<data-dir>/management-token`). `token create` prints the SecretID, the only time it is shown.
 *
 * @module
 */
import { type CommandContext, type CommandSpec, json } from "./commands.ts";
import { formatTable } from "./table.ts";
import { errorText } from "../lib/error_text.ts";

interface Policy {
  ID: string;
  Name: string;
  Description: string;
  Rules?: string;
  Datacenters: string[] | null;
}

interface Token {
  AccessorID: string;
  SecretID?: string;
  Description: string;
  Policies: { ID: string; Name: string }[];
  Local: boolean;
  CreateTime: string;
}

/** Largest rules file read. */
const RULES_FILE_BYTES_MAX = 64 * 1024;

async function call<T>(ctx: CommandContext, method: string, path: string, body?: unknown) {
  const r = await ctx.client.request(method, path, {
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return await r!.json() as T;
}

/** `--rules`: `@FILE`, `-` (stdin) or the rules themselves, as `consul acl policy create`. */
async function rulesText(arg: string): Promise<string> {
  if (arg !== "-" && !arg.startsWith("@")) return arg;
  const bytes = arg === "-"
    ? new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer())
    : await Deno.readFile(arg.slice(1));
  if (bytes.byteLength > RULES_FILE_BYTES_MAX) {
    throw new Error(`over ${RULES_FILE_BYTES_MAX} bytes`);
  }
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

function str(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.parsed.flags.get(name) as string | undefined;
  return v === undefined || v === "" ? undefined : v;
}

function printPolicy(ctx: CommandContext, p: Policy): void {
  ctx.out(
    `ID:           ${p.ID}\nName:         ${p.Name}\nDescription:  ${p.Description}\n` +
      `Datacenters:  ${(p.Datacenters ?? []).join(", ")}\nRules:\n${p.Rules ?? ""}\n`,
  );
}

function printToken(ctx: CommandContext, t: Token): void {
  ctx.out(
    `AccessorID:   ${t.AccessorID}\n` +
      (t.SecretID === undefined ? "" : `SecretID:     ${t.SecretID}\n`) +
      `Description:  ${t.Description}\nLocal:        ${t.Local}\nCreate Time:  ${t.CreateTime}\n` +
      `Policies:\n${t.Policies.map((p) => `   ${p.ID} - ${p.Name}\n`).join("")}`,
  );
}

const POLICY_FLAGS = [
  {
    name: "policy-name",
    kind: "string",
    value: "NAME",
    help: "a policy the token gets, by name (repeatable, or comma-separated)",
    repeatable: true,
  },
  {
    name: "policy-id",
    kind: "string",
    value: "ID",
    help: "a policy the token gets, by ID (repeatable, or comma-separated)",
    repeatable: true,
  },
] as const;

/** The policy links `--policy-id` and `--policy-name` give (Consul's `Policies`). */
function policyLinks(ctx: CommandContext): ({ ID: string } | { Name: string })[] {
  const list = (name: string) => (str(ctx, name) ?? "").split(",").filter((x) => x !== "");
  return [
    ...list("policy-id").map((ID) => ({ ID })),
    ...list("policy-name").map((Name) => ({ Name })),
  ];
}

const DESCRIPTION = {
  name: "description",
  kind: "string",
  value: "TEXT",
  help: "what it is for",
} as const;

export const ACL_COMMANDS: readonly CommandSpec[] = [
  {
    name: "acl policy create",
    usage: "berth acl policy create --name NAME --rules @FILE|-|RULES [--description TEXT]",
    summary: "make an ACL policy from rules (HCL or JSON, as Consul's)",
    flags: [
      { name: "name", kind: "string", value: "NAME", help: "the policy's unique name" },
      {
        name: "rules",
        kind: "string",
        value: "RULES",
        help: "the rules, @FILE to read them from a file, - from stdin",
      },
      DESCRIPTION,
    ],
    args: [0, 0],
    remote: true,
    async run(ctx) {
      const name = str(ctx, "name");
      const rulesArg = str(ctx, "rules");
      if (name === undefined || rulesArg === undefined) {
        ctx.err("berth acl policy create: --name and --rules are required");
        return 2;
      }
      let rules: string;
      try {
        rules = await rulesText(rulesArg);
      } catch (e) {
        ctx.err(`berth acl policy create: cannot read rules ${rulesArg}: ${errorText(e)}`);
        return 1;
      }
      const p = await call<Policy>(ctx, "PUT", "/v1/acl/policy", {
        Name: name,
        Description: str(ctx, "description") ?? "",
        Rules: rules,
      });
      if (ctx.json) return json(ctx, p);
      printPolicy(ctx, p);
      return 0;
    },
  },
  {
    name: "acl policy list",
    usage: "berth acl policy list",
    summary: "list the ACL policies",
    flags: [],
    args: [0, 0],
    remote: true,
    async run(ctx) {
      const list = await call<Policy[]>(ctx, "GET", "/v1/acl/policies");
      if (ctx.json) return json(ctx, list);
      ctx.out(
        formatTable(["ID", "Name", "Description"], list.map((p) => [p.ID, p.Name, p.Description])),
      );
      return 0;
    },
  },
  {
    name: "acl policy delete",
    usage: "berth acl policy delete --id ID | --name NAME",
    summary: "delete an ACL policy",
    flags: [
      { name: "id", kind: "string", value: "ID", help: "the policy's ID" },
      { name: "name", kind: "string", value: "NAME", help: "the policy's name" },
    ],
    args: [0, 0],
    remote: true,
    async run(ctx) {
      const byId = str(ctx, "id");
      const byName = str(ctx, "name");
      if ((byId === undefined) === (byName === undefined)) {
        ctx.err("berth acl policy delete: give one of --id or --name");
        return 2;
      }
      const id = byId ??
        (await call<Policy>(ctx, "GET", `/v1/acl/policy/name/${encodeURIComponent(byName!)}`)).ID;
      await call<boolean>(ctx, "DELETE", `/v1/acl/policy/${encodeURIComponent(id)}`);
      if (ctx.json) return json(ctx, { id, deleted: true });
      ctx.out(`Policy "${byName ?? id}" deleted successfully\n`);
      return 0;
    },
  },
  {
    name: "acl token create",
    usage: "berth acl token create [--policy-name NAME]… [--policy-id ID]… [--description TEXT]",
    summary: "make an ACL token; prints its SecretID, the only time it is shown",
    flags: [
      ...POLICY_FLAGS,
      DESCRIPTION,
      { name: "local", kind: "bool", help: "a token of this datacenter only (kept, as Consul's)" },
    ],
    args: [0, 0],
    remote: true,
    async run(ctx) {
      const t = await call<Token>(ctx, "PUT", "/v1/acl/token", {
        Description: str(ctx, "description") ?? "",
        Policies: policyLinks(ctx),
        Local: ctx.parsed.flags.get("local") === true,
      });
      if (ctx.json) return json(ctx, t);
      printToken(ctx, t);
      return 0;
    },
  },
  {
    name: "acl token update",
    usage: "berth acl token update --id ACCESSOR [--policy-name NAME]… [--policy-id ID]… " +
      "[--description TEXT]",
    summary: "replace a token's policies (when given) or description; the anonymous token too",
    flags: [
      { name: "id", kind: "string", value: "ACCESSOR", help: "the token's AccessorID" },
      ...POLICY_FLAGS,
      DESCRIPTION,
    ],
    args: [0, 0],
    remote: true,
    async run(ctx) {
      const id = str(ctx, "id");
      if (id === undefined) {
        ctx.err("berth acl token update: --id ACCESSOR is required");
        return 2;
      }
      const path = `/v1/acl/token/${encodeURIComponent(id)}`;
      const before = await call<Token>(ctx, "GET", path);
      const links = policyLinks(ctx);
      const t = await call<Token>(ctx, "PUT", path, {
        Description: str(ctx, "description") ?? before.Description,
        Policies: links.length > 0 ? links : before.Policies.map((p) => ({ ID: p.ID })),
        Local: before.Local,
      });
      if (ctx.json) return json(ctx, t);
      printToken(ctx, t);
      return 0;
    },
  },
  {
    name: "acl token list",
    usage: "berth acl token list",
    summary: "list the ACL tokens (never their secrets)",
    flags: [],
    args: [0, 0],
    remote: true,
    async run(ctx) {
      const list = await call<Token[]>(ctx, "GET", "/v1/acl/tokens");
      if (ctx.json) return json(ctx, list);
      ctx.out(formatTable(
        ["AccessorID", "Description", "Policies", "Local", "Create Time"],
        list.map((t) => [
          t.AccessorID,
          t.Description,
          t.Policies.map((p) => p.Name).join(","),
          String(t.Local),
          t.CreateTime,
        ]),
      ));
      return 0;
    },
  },
  {
    name: "acl token delete",
    usage: "berth acl token delete --id ACCESSOR",
    summary: "delete an ACL token by its AccessorID",
    flags: [{ name: "id", kind: "string", value: "ACCESSOR", help: "the token's AccessorID" }],
    args: [0, 0],
    remote: true,
    async run(ctx) {
      const id = str(ctx, "id");
      if (id === undefined) {
        ctx.err("berth acl token delete: --id ACCESSOR is required");
        return 2;
      }
      await call<boolean>(ctx, "DELETE", `/v1/acl/token/${encodeURIComponent(id)}`);
      if (ctx.json) return json(ctx, { accessorId: id, deleted: true });
      ctx.out(`Token "${id}" deleted successfully\n`);
      return 0;
    },
  },
];
