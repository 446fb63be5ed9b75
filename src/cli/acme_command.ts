/**
 * `berth cert renew NAME` and `berth acme` (README "ACME"): a new ACME certificate for a name
 * now; the names being ordered with their status, failures, next attempt and the CA's last
 * error, and the cluster's account.
 *
 * @module
 */
import type { CommandSpec } from "./commands.ts";
import { formatTable } from "./table.ts";

/** A time for the table: ISO without milliseconds, or `-`. */
function when(ms: number): string {
  return ms <= 0 ? "-" : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

export const ACME_COMMANDS: readonly CommandSpec[] = [
  {
    name: "cert renew",
    usage: "berth cert renew NAME",
    summary: "order a new ACME certificate for NAME now (the leader does it)",
    flags: [],
    args: [1, 1],
    remote: true,
    optional: true,
    async run(ctx) {
      const name = ctx.parsed.args[0]!;
      await ctx.client.acmeRenew(name);
      if (ctx.json) ctx.out(JSON.stringify({ renew: name }, null, 2) + "\n");
      else ctx.out(`Renewal of ${name} asked; see berth acme\n`);
      return 0;
    },
  },
  {
    name: "acme",
    usage: "berth acme",
    summary:
      "ACME: certificates and renewal times, names being ordered (status, next attempt, last error)",
    flags: [],
    args: [0, 0],
    remote: true,
    optional: true,
    async run(ctx) {
      const v = await ctx.client.acme();
      if (ctx.json) {
        ctx.out(JSON.stringify(v, null, 2) + "\n");
        return 0;
      }
      for (const a of v.accounts) {
        ctx.out(`Account ${a.url ?? "(not registered yet)"} at ${a.directory}\n`);
      }
      if (v.lease !== null) ctx.out(`Ordered by ${v.lease.node} (term ${v.lease.term})\n`);
      ctx.out(formatTable(
        ["Certificate", "Issuer", "Expires", "Renewal"],
        v.certificates.map((c) => [c.name, c.issuer, when(c.notAfter), when(c.renewAt)]),
      ));
      ctx.out(formatTable(
        ["Name", "Status", "Failures", "Next attempt", "Last error"],
        v.names.map((n) => [
          n.name,
          n.renew ? `${n.status} (renewal)` : n.status,
          String(n.failures),
          when(n.nextAttemptMs),
          n.lastError === "" ? "-" : n.lastError,
        ]),
      ));
      return 0;
    },
  },
];
