/**
 * The summary lines of `berth explain SERVICE` (explain.ts): health, routes and what keeps
 * them, a route that refuses every request and why, and the proxies' ejections. Pure.
 *
 * @module
 */
import { refusedText, type ServiceRoutesInfo } from "../proxy/route_explain.ts";
import type { Verdict } from "../store/mod.ts";
import type { MemberEjections, RejectedLabel } from "./explain_peers.ts";

/** One instance with its health by source, as explain shows it. */
export interface InstanceExplain {
  id: string;
  node: string;
  address: string;
  port: number;
  weight: number;
  container: string | null;
  status: string;
  output: string;
  served: boolean;
  sources: { node: Verdict; docker: Verdict | null; check: Verdict | null };
  checks: { id: string; name: string; status: string; output: string }[];
}

/** One line per reason the service is or is not served and routed. */
export function serviceSummary(o: {
  service: string;
  instances: readonly InstanceExplain[];
  /** Instances the token may not read (node:read on their node), not in `instances`. */
  hidden?: number;
  routes: ServiceRoutesInfo | null;
  members: readonly MemberEjections[];
  proxyOn: boolean;
  /** The rejected labels of its containers (the reason a setting fails closed). */
  rejected?: readonly RejectedLabel[];
}): string[] {
  const out: string[] = [];
  const served = o.instances.filter((i) => i.served);
  const hidden = o.hidden ?? 0;
  if (o.instances.length === 0) {
    out.push(
      hidden > 0
        ? `${hidden} instance${hidden === 1 ? " is" : "s are"} registered on nodes this token ` +
          "may not read (node:read)"
        : "no instance is registered",
    );
  } else {
    out.push(`${served.length} of ${o.instances.length} instances pass health`);
    for (const i of o.instances) {
      if (!i.served) out.push(`${i.id} is ${i.status}: ${i.output || "(no output)"}`);
    }
  }
  if (!o.proxyOn) out.push("the proxy is off on this member");
  else if (
    o.routes === null ||
    (o.routes.http.length === 0 && o.routes.tcp.length === 0 && !o.routes.udp?.length)
  ) {
    out.push(
      "no route: no instance names a host (berth.http.host), a path (berth.http.path), a " +
        "TCP port (berth.tcp.port) or a UDP port (berth.udp.port, instances tagged udp), and " +
        "no --edge-domain gives it one",
    );
  } else {
    for (const r of o.routes.http) {
      const at = `${r.host ?? "*"}${r.prefix}`;
      if (r.servedBy !== o.service) out.push(`route ${at} is served by ${r.servedBy} (conflict)`);
    }
    for (const t of o.routes.tcp) {
      if (t.servedBy !== o.service) out.push(`TCP port ${t.port} is kept by ${t.servedBy}`);
    }
    for (const u of o.routes.udp ?? []) {
      if (u.servedBy !== o.service) out.push(`UDP port ${u.port} is kept by ${u.servedBy}`);
    }
    const targets = o.routes.options.members.filter((m) => m.target).length;
    const refused = o.routes.options.refused;
    if (refused) out.push(`${refusedText(refused)}${refusedWhy(refused.key, o.rejected ?? [])}`);
    else if (targets === 0) out.push("the proxy has no target for it: its routes answer 503");
  }
  for (const m of o.members) {
    for (const e of m.ejected) out.push(`${e.instance} is ejected by the proxy on ${m.member}`);
  }
  return out;
}

/** Why a key is `none`: the rejected labels that stored it, else it was written so. */
export function refusedWhy(key: string, rejected: readonly RejectedLabel[]): string {
  const bad = rejected.filter((r) => r.label === key);
  if (bad.length === 0) return ` (set to none, or a rejected API Meta value)`;
  return ` (rejected: ${bad.map((r) => `${r.container}: ${r.message}`).join("; ")})`;
}
