/**
 * `berth cert add|list|rm`: the HTTPS certificates the proxy serves, through the agent's API
 * (src/api/certs.ts). `add` reads a PEM chain (leaf first) and its private key from files and
 * sends them to the agent, which checks them and seals the key with the cluster key before it
 * is stored; `list` shows name, names, issuer, expiry, source and which one is the default, and
 * with ACME (README "ACME") the names being ordered with their status, failures, next attempt
 * and the CA's last error, and when each ACME certificate is renewed.
 * (`berth cert renew` is ACME's: acme_command.ts.)
 *
 * @module
 */
import type { CommandSpec } from "./commands.ts";
import { formatTable } from "./table.ts";
import { errorText } from "../lib/error_text.ts";
import type { CertView } from "../api/certs.ts";
import { print } from "./token_command.ts";

/** Largest certificate or key file read (a chain of a few certificates is far smaller). */
export const CERT_FILE_BYTES_MAX = 256 * 1024;

/** A time for the table: ISO without milliseconds. */
function when(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A PEM file's text; throws when it cannot be read, is too big or is not UTF-8. */
function readPemFile(path: string): string {
  const st = Deno.statSync(path);
  if (!st.isFile) throw new Error("not a file");
  if (st.size > CERT_FILE_BYTES_MAX) throw new Error(`over ${CERT_FILE_BYTES_MAX} bytes`);
  return new TextDecoder("utf-8", { fatal: true }).decode(Deno.readFileSync(path));
}

/** The names column: the first few, then how many more. */
function names(list: readonly string[]): string {
  return list.length <= 3 ? list.join(",") : `${list.slice(0, 3).join(",")},+${list.length - 3}`;
}

export const CERT_COMMANDS: readonly CommandSpec[] = [
  {
    name: "cert add",
    usage: "berth cert add --name NAME [--default] CERT_FILE KEY_FILE",
    summary: "add or replace an HTTPS certificate (PEM chain, leaf first, and its key)",
    flags: [
      { name: "name", kind: "string", value: "NAME", help: "the name it is kept under" },
      {
        name: "default",
        kind: "bool",
        help: "serve it for names no certificate has (the old default stops being one)",
      },
    ],
    args: [2, 2],
    remote: true,
    optional: true,
    async run(ctx) {
      const f = ctx.parsed.flags;
      const name = f.get("name");
      if (typeof name !== "string" || name === "") {
        ctx.err(
          "berth cert add: --name NAME is needed (berth cert add --name NAME CERT_FILE KEY_FILE)",
        );
        return 2;
      }
      const files = ctx.parsed.args as [string, string];
      const [certPem, keyPem] = ["certificate", "key"].map((what, i) => {
        try {
          return readPemFile(files[i]!);
        } catch (e) {
          ctx.err(`berth cert add: cannot read the ${what} file ${files[i]}: ${errorText(e)}`);
          return undefined;
        }
      });
      if (certPem === undefined || keyPem === undefined) return 1;
      const v = await ctx.client.certPut(name, {
        certPem,
        keyPem,
        ...(f.get("default") === true ? { default: true } : {}),
      });
      if (ctx.json) return print(ctx, v);
      ctx.out(
        `Stored certificate ${v.name} for ${v.names.join(", ")}, valid until ${when(v.notAfter)}${
          v.default ? " (default)" : ""
        }\n`,
      );
      return 0;
    },
  },
  {
    name: "cert list",
    usage: "berth cert list",
    summary: "HTTPS certificates: name, names, issuer, expiry, source, default, ACME state",
    flags: [],
    args: [0, 0],
    remote: true,
    optional: true,
    async run(ctx) {
      const list: CertView[] = await ctx.client.certs();
      if (ctx.json) return print(ctx, list);
      // ACME's view (README "ACME"): names in flight (no certificate yet, or being renewed) and
      // renewal times. An agent without it (older, or a token without the right): left out.
      const acme = await ctx.client.acme().catch(() => null);
      const inFlight = new Map((acme?.names ?? []).map((n) => [n.name, n]));
      const renewal = new Map((acme?.certificates ?? []).map((c) => [c.name, c.renewAt]));
      const acmeText = (name: string, source: string): string => {
        const n = inFlight.get(name);
        if (n !== undefined) {
          const failed = n.failures === 0
            ? ""
            : `, ${n.failures} failed, next ${when(n.nextAttemptMs)}: ${n.lastError}`;
          return `${n.status}${n.renew ? " (renewal)" : ""}${failed}`;
        }
        const at = renewal.get(name);
        return source === "acme" && at !== undefined ? `renews ${when(at)}` : "";
      };
      const rows = list.map((c) => [
        c.name,
        names(c.names),
        c.issuer,
        when(c.notAfter),
        c.source,
        c.default ? "yes" : "",
        acmeText(c.name, c.source),
      ]);
      const listed = new Set(list.map((c) => c.name));
      for (const n of inFlight.values()) {
        if (!listed.has(n.name)) {
          rows.push([n.name, n.name, "-", "-", "acme", "", acmeText(n.name, "acme")]);
        }
      }
      rows.sort((a, b) => a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0);
      const showAcme = rows.some((r) => r[6] !== "");
      ctx.out(formatTable(
        ["Name", "Names", "Issuer", "Expires", "Source", "Default", ...(showAcme ? ["ACME"] : [])],
        rows.map((r) => showAcme ? r : r.slice(0, 6)),
      ));
      return 0;
    },
  },
  {
    name: "cert rm",
    usage: "berth cert rm NAME",
    summary: "remove an HTTPS certificate (members stop serving it)",
    flags: [],
    args: [1, 1],
    remote: true,
    optional: true,
    async run(ctx) {
      const name = ctx.parsed.args[0]!;
      await ctx.client.certRemove(name);
      return ctx.json
        ? print(ctx, { removed: name })
        : (ctx.out(`Removed certificate ${name}\n`), 0);
    },
  },
];
