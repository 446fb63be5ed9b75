/**
 * `berth explain CONTAINER|SERVICE|URL`: why a container, a service or a URL is (or is not)
 * registered, served and routed, from GET /v1/berth/explain (src/api/explain.ts), printed as
 * sections; `--json` prints the answer as it is. A target holding `/` is a URL, else a service
 * when one has that name, else a container; `--container`, `--service` or `--url` says which.
 * Exit code 1 when the target is not found, and for a URL that no route matches.
 *
 * @module
 */
import type { ExplainMember as MemberInfo } from "../api/mod.ts";
import type { CommandSpec } from "./commands.ts";
import { formatTable } from "./table.ts";

// The answer's shapes, as far as the printer reads them (src/api/explain.ts).
interface Verdict {
  status: string;
  output: string;
}
interface InstanceState {
  id: string;
  node: string;
  address: string;
  port: number;
  weight: number;
  status: string;
  output: string;
  sources: { node: Verdict; docker: Verdict | null; check: Verdict | null };
}
interface RouteOptions {
  policy: string;
  proto: string;
  refused?: { status: number; key: string } | null;
  redirectHttps: boolean;
  hsts: string | null;
  settings?: Record<string, string>;
  members: MemberInfo[];
}
interface Ejections {
  member: string;
  state: string;
  ejected: { instance: string; untilMs: number }[];
  error: string | null;
}
interface ContainerAnswer {
  kind: "container";
  member: string;
  seenAgoMs: number;
  name: string;
  id: string;
  image: string;
  state: string;
  summary: string;
  proposeError?: string | null;
  labels: { key: string; value: string; from: string }[];
  problems: { label: string; message: string }[];
  ports: {
    port: string;
    published: string | null;
    instance: string | null;
    service: string | null;
    reason: string | null;
  }[];
  instances: { id: string; registered: boolean; state: InstanceState | null }[];
}
interface ServiceAnswer {
  kind: "service";
  service: string;
  member: string;
  proxy: string;
  summary: string[];
  instances: InstanceState[];
  routes: {
    http: { host: string | null; prefix: string; edge: boolean; servedBy: string | null }[];
    tcp: { port: number; servedBy: string | null }[];
    udp?: { port: number; servedBy: string | null }[];
    conflicts: string[];
    options: RouteOptions;
  } | null;
  tcpListeners: { port: number; state: string; error: string | null }[];
  udpListeners?: { port: number; state: string; error: string | null }[];
  rejected?: Rejected[];
  ejections: Ejections[];
}
interface Rejected {
  member: string;
  container: string;
  label: string;
  message: string;
}
interface UrlAnswer {
  kind: "url";
  member: string;
  scheme?: string;
  host: string | null;
  path: string;
  matched: { host: string | null; prefix: string; edge: boolean; service: string } | null;
  reasons: string[];
  conflicts: string[];
  route: RouteOptions | null;
  pick: string | null;
  pickNote: string;
  rules: string[];
  tls?: string[];
  rejected?: Rejected[];
  ejections: Ejections[];
}
export type ExplainAnswer = ContainerAnswer | ServiceAnswer | UrlAnswer;

const dash = (v: string | null | undefined) => v === null || v === undefined || v === "" ? "-" : v;
const hostPort = (a: string, p: number) => `${a.includes(":") ? `[${a}]` : a}:${p}`;
const firstLine = (s: string) => (s.split("\n")[0] ?? "").slice(0, 80);

function section(title: string, body: string): string {
  return `\n${title}\n${
    body.split("\n").filter((l) => l !== "").map((l) => `  ${l}`).join("\n")
  }\n`;
}

/** Health by source: `docker critical (unhealthy: …)`, for the instance tables. */
function sources(i: InstanceState): string {
  const parts: string[] = [];
  const add = (name: string, v: Verdict | null) => {
    if (v !== null && v.status !== "passing") {
      parts.push(`${name} ${v.status}${v.output ? `: ${firstLine(v.output)}` : ""}`);
    }
  };
  add("node", i.sources.node);
  add("docker", i.sources.docker);
  add("check", i.sources.check);
  return parts.join("; ") || "-";
}

function ejectionRows(list: readonly Ejections[]): string {
  return formatTable(
    ["Member", "Proxy", "Ejected"],
    list.map((m) => [
      m.member,
      m.state === "unknown" ? `unknown (${m.error ?? "no answer"})` : m.state,
      m.ejected.map((e) => e.instance).join(", ") || "-",
    ]),
  );
}

function memberRows(members: readonly MemberInfo[]): string {
  return formatTable(
    ["Instance", "Address", "Node", "Weight", "Target"],
    members.map((m) => [
      m.instance,
      hostPort(m.address, m.port),
      m.node,
      String(m.weight),
      m.target ? (m.udp ? "yes (UDP routes only)" : "yes") : `no: ${m.why ?? ""}`,
    ]),
  );
}

function options(o: RouteOptions): string {
  const settings = Object.entries(o.settings ?? {}).map(([k, v]) => `${k}=${v}`);
  return `balancing ${o.policy}, upstream ${o.proto}` +
    (o.redirectHttps ? ", redirect to https" : "") + (o.hsts ? `, HSTS ${o.hsts}` : "") +
    (settings.length === 0 ? "" : `\nsettings: ${settings.join(", ")}`);
}

/** The readable sections of an explain answer. */
export function renderExplain(e: ExplainAnswer): string {
  switch (e.kind) {
    case "container":
      return renderContainer(e);
    case "service":
      return renderService(e);
    case "url":
      return renderUrl(e);
  }
}

function renderContainer(e: ContainerAnswer): string {
  let out = `Container ${e.name} (${e.id.slice(0, 12)}) on ${e.member}: ${e.image}, ${e.state}` +
    ` (seen ${(e.seenAgoMs / 1000).toFixed(1)}s ago)\n  ${e.summary}\n` +
    (e.proposeError ? `  not registered yet: ${e.proposeError}\n` : "");
  out += section(
    "Labels",
    e.labels.length === 0
      ? "(no berth.* or SERVICE_* labels)"
      : formatTable(["Label", "Value", "From"], e.labels.map((l) => [l.key, l.value, l.from])),
  );
  out += section(
    "Rejected labels",
    e.problems.length === 0 ? "(none)" : e.problems.map((p) => p.message).join("\n"), // each message names its label
  );
  out += section(
    "Ports",
    e.ports.length === 0 ? "(none: the container exposes and publishes no port)" : formatTable(
      ["Port", "Published", "Instance", "Service", "Why not"],
      e.ports.map((
        p,
      ) => [p.port, dash(p.published), dash(p.instance), dash(p.service), dash(p.reason)]),
    ),
  );
  if (e.instances.length > 0) {
    out += section(
      "Instances",
      formatTable(
        ["Instance", "Registered", "Status", "Why"],
        e.instances.map((i) => [
          i.id,
          i.registered ? "yes" : "no",
          i.state?.status ?? "-",
          i.state === null ? "-" : sources(i.state),
        ]),
      ),
    );
  }
  return out;
}

/** The rejected labels of a service's containers, one line each (the message names the label). */
function rejectedRows(list: readonly Rejected[]): string {
  return list.length === 0
    ? "(none)"
    : list.map((r) => `${r.container} on ${r.member}: ${r.message}`).join("\n");
}

function renderService(e: ServiceAnswer): string {
  let out = `Service ${e.service} (asked on ${e.member})\n${
    e.summary.map((l) => `  ${l}\n`).join("")
  }`;
  if (e.rejected !== undefined) out += section("Rejected labels", rejectedRows(e.rejected));
  out += section(
    "Instances",
    formatTable(
      ["Instance", "Address", "Node", "Weight", "Status", "Why"],
      e.instances.map((i) => [
        i.id,
        hostPort(i.address, i.port),
        i.node,
        String(i.weight),
        i.status,
        sources(i),
      ]),
    ),
  );
  if (e.proxy === "off") return out + section("Routes", "the proxy is off on this member");
  const r = e.routes;
  if (r === null) return out + section("Routes", "(none)");
  const listeners = new Map(e.tcpListeners.map((t) => [t.port, t]));
  const udpListeners = new Map((e.udpListeners ?? []).map((t) => [t.port, t]));
  const state = (l: { state: string; error: string | null } | undefined) =>
    l === undefined ? "" : ` (${l.state}${l.error ? `: ${l.error}` : ""})`;
  out += section(
    "Routes",
    formatTable(
      ["Route", "Served by"],
      [
        ...r.http.map((h) => [
          `${h.host ?? "*"}${h.prefix}${h.edge ? " (edge domain)" : ""}`,
          dash(h.servedBy),
        ]),
        ...r.tcp.map((
          t,
        ) => [`tcp :${t.port}`, `${dash(t.servedBy)}${state(listeners.get(t.port))}`]),
        ...(r.udp ?? []).map((u) => [
          `udp :${u.port}`,
          `${dash(u.servedBy)}${state(udpListeners.get(u.port))}`,
        ]),
      ],
    ),
  );
  if (r.conflicts.length > 0) out += section("Conflicts", r.conflicts.join("\n"));
  out += section("Proxy", `${options(r.options)}\n${memberRows(r.options.members)}`);
  out += section("Ejections", ejectionRows(e.ejections));
  return out;
}

function renderUrl(e: UrlAnswer): string {
  const asked = e.host === null ? e.path : `${e.scheme ? `${e.scheme}://` : ""}${e.host}${e.path}`;
  let out = e.matched === null
    ? `URL ${asked}: no route (asked on ${e.member})\n`
    : `URL ${asked} → route ${
      e.matched.host ?? "*"
    }${e.matched.prefix} of service ${e.matched.service} (asked on ${e.member})\n`;
  out += e.reasons.map((l) => `  ${l}\n`).join("");
  if (e.conflicts.length > 0) out += section("Conflicts", e.conflicts.join("\n"));
  if (e.tls?.length) out += section("TLS", e.tls.join("\n"));
  if (e.rules.length > 0) out += section("Rules", e.rules.join("\n"));
  if (e.rejected?.length) out += section("Rejected labels", rejectedRows(e.rejected));
  if (e.route !== null) {
    out += section(
      "Proxy",
      `${options(e.route)}\npick now: ${e.pick ?? "none"} (${e.pickNote})\n${
        memberRows(e.route.members)
      }`,
    );
  }
  if (e.ejections.length > 0) out += section("Ejections", ejectionRows(e.ejections));
  return out;
}

const KIND_FLAGS = ["container", "service", "url"] as const;

export const EXPLAIN_COMMANDS: readonly CommandSpec[] = [{
  name: "explain",
  usage:
    "berth explain CONTAINER|SERVICE|URL [--container | --service | --url] [--key KEY] [--node NAME]",
  summary: "why a container, service or URL is (not) registered, served and routed",
  flags: [
    { name: "container", kind: "bool", help: "TARGET is a container name or id prefix" },
    { name: "service", kind: "bool", help: "TARGET is a service name" },
    { name: "url", kind: "bool", help: "TARGET is a URL (http://host/path, host/path, /path)" },
    {
      name: "key",
      kind: "string",
      value: "KEY",
      help:
        "for a URL: the hash key of berth.lb=hash (client IP, header or cookie value), or the cookie value of berth.lb=sticky_cookie; an IP is also the client berth.http.allow is checked with",
    },
    {
      name: "node",
      kind: "string",
      value: "NAME",
      help: "for a container: the member it runs on (when several run one of that name)",
    },
  ],
  args: [1, 1],
  remote: true,
  optional: true,
  async run(ctx) {
    const target = ctx.parsed.args[0]!;
    const kinds = KIND_FLAGS.filter((k) => ctx.parsed.flags.get(k) === true);
    if (kinds.length > 1) {
      ctx.err(`berth explain: give at most one of --container, --service, --url`);
      return 2;
    }
    const r = await ctx.client.request("GET", "/v1/berth/explain", {
      query: {
        [kinds[0] ?? "target"]: target,
        key: ctx.parsed.flags.get("key") as string | undefined,
        node: ctx.parsed.flags.get("node") as string | undefined,
      },
    });
    const e = await r!.json() as ExplainAnswer;
    if (ctx.json) ctx.out(JSON.stringify(e, null, 2) + "\n");
    else ctx.out(renderExplain(e));
    return e.kind === "url" && e.matched === null ? 1 : 0;
  },
}];
