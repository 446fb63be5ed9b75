/**
 * The agent's one typed, validated configuration. Sources, strongest first: command-line flags,
 * `BERTH_<FLAG>` environment variables (`--data-dir` → `BERTH_DATA_DIR`), the `--config` JSON
 * file (keys are flag names: `{"data-dir": "/srv/berth"}`), then embedded defaults (some differ
 * under `--dev`). A bad value stops with one line naming the input and what is expected.
 *
 * @module
 */

import { parseDuration } from "./lib/duration.ts";
import { formatHostPort, type HostPort, isIp, parseHostPort } from "./lib/host_port.ts";
import { errorText } from "./lib/error_text.ts";

export interface Config {
  dev: boolean;
  node: string;
  dataDir: string;
  bind: HostPort;
  advertise: string;
  bootstrap: boolean;
  join: string[];
  http: HostPort;
  dns: HostPort;
  domain: string;
  recursor: HostPort[];
  edgeDomain: string | null;
  proxyHttp: HostPort | null;
  docker: string | null;
  internal: boolean;
  voters: number;
  nodeTimeoutMs: number;
  reconcileIntervalMs: number;
  dnsTtl: number;
  token: string | null;
  snapshotEntries: number;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Kind = "bool" | "string" | "addr" | "addrs" | "ip" | "domain" | "duration" | "int" | "off";

interface FlagSpec {
  name: string;
  kind: Kind;
  def: string;
  /** Default under --dev, when it differs. */
  devDef?: string;
  help: string;
  /** Allowed range for `int`. */
  range?: [number, number];
}

/** Every agent flag, in the order `berth agent --help` lists them. */
export const AGENT_FLAGS: readonly FlagSpec[] = [
  { name: "config", kind: "string", def: "", help: "JSON file of flag values (flags win)" },
  {
    name: "dev",
    kind: "bool",
    def: "false",
    help: "single-node cluster, data in ./data, everything on 127.0.0.1",
  },
  { name: "node", kind: "string", def: "<hostname>", help: "unique member name" },
  {
    name: "data-dir",
    kind: "string",
    def: "/var/lib/berth",
    devDef: "./data",
    help: "directory for the SQLite files",
  },
  { name: "bind", kind: "addr", def: "127.0.0.1:8300", help: "cluster (Raft RPC) listen address" },
  {
    name: "advertise",
    kind: "ip",
    def: "",
    help: "address other members use; also registered for ports published on 0.0.0.0 " +
      "(default: host of --bind)",
  },
  {
    name: "bootstrap",
    kind: "bool",
    def: "false",
    devDef: "true",
    help: "start a new cluster with this node as its first voter",
  },
  { name: "join", kind: "string", def: "", help: "members to join through, comma-separated" },
  { name: "http", kind: "addr", def: "127.0.0.1:8500", help: "admin API and dashboard" },
  { name: "dns", kind: "addr", def: "127.0.0.1:8600", help: "DNS listen address, UDP and TCP" },
  { name: "domain", kind: "domain", def: "berth.", help: "DNS domain (consul. for Consul names)" },
  {
    name: "recursor",
    kind: "addrs",
    def: "",
    help: "upstream resolvers for other names, comma-separated host[:port]",
  },
  {
    name: "edge-domain",
    kind: "domain",
    def: "",
    help: "names under it resolve to the healthy proxy members, TTL 0",
  },
  {
    name: "proxy-http",
    kind: "off",
    def: "0.0.0.0:80",
    devDef: "127.0.0.1:8080",
    help: "HTTP load balancer listen address, or off",
  },
  {
    name: "docker",
    kind: "string",
    def: "unix:///var/run/docker.sock",
    help: "Docker engine URL (unix:// or http://), or off",
  },
  {
    name: "internal",
    kind: "bool",
    def: "false",
    help: "register container IP and port instead of published host ports",
  },
  {
    name: "voters",
    kind: "int",
    def: "3",
    range: [1, 7],
    help: "voting members the cluster grows to; later members stay learners",
  },
  {
    name: "node-timeout",
    kind: "duration",
    def: "10s",
    help: "silence after which a member's instances are marked critical",
  },
  {
    name: "reconcile-interval",
    kind: "duration",
    def: "30s",
    help: "full Docker reconcile period (events reconcile at once)",
  },
  { name: "dns-ttl", kind: "int", def: "0", range: [0, 86400], help: "TTL of service answers" },
  {
    name: "snapshot-entries",
    kind: "int",
    def: "8192",
    range: [16, 10_000_000],
    help: "applied log entries after which the store is snapshotted and the log compacted",
  },
  { name: "token", kind: "string", def: "", help: "API token required on writes (none: open)" },
];

function normalizeDomain(s: string): string {
  const d = s.toLowerCase().replace(/\.?$/, ".");
  if (!/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+$/.test(d)) {
    throw new Error("not a domain name like berth. or example.com.");
  }
  return d;
}

function envName(flag: string): string {
  return `BERTH_${flag.toUpperCase().replaceAll("-", "_")}`;
}

export interface LoadOptions {
  env?: Record<string, string | undefined>;
  readFile?: (path: string) => string;
  hostname?: string;
}

/**
 * Splits agent argv into raw flag values. Accepts `--flag value`, `--flag=value` and bare
 * booleans (`--dev`). Throws ConfigError on unknown flags or missing values.
 */
export function parseFlags(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      throw new ConfigError(`unexpected argument "${arg}" (flags start with --)`);
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = AGENT_FLAGS.find((f) => f.name === name);
    if (spec === undefined) {
      throw new ConfigError(`unknown flag --${name} (see berth agent --help)`);
    }
    if (eq >= 0) out.set(name, arg.slice(eq + 1));
    else if (spec.kind === "bool") out.set(name, "true");
    else {
      const v = argv[++i];
      if (v === undefined) throw new ConfigError(`--${name} needs a value`);
      out.set(name, v);
    }
  }
  return out;
}

/** Builds the Config from argv, env, the config file and defaults. */
export function loadConfig(argv: readonly string[], opts: LoadOptions = {}): Config {
  const env = opts.env ?? Deno.env.toObject();
  const flags = parseFlags(argv);
  const configPath = flags.get("config") ?? env[envName("config")];
  let file: Record<string, unknown> = {};
  if (configPath) {
    let text: string;
    try {
      text = (opts.readFile ?? Deno.readTextFileSync)(configPath);
    } catch (e) {
      throw new ConfigError(`--config ${configPath}: cannot read (${errorText(e)})`);
    }
    try {
      const parsed = JSON.parse(text);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new Error("top level is not an object");
      }
      file = parsed;
    } catch (e) {
      throw new ConfigError(`--config ${configPath}: not a JSON object (${errorText(e)})`);
    }
    for (const k of Object.keys(file)) {
      if (!AGENT_FLAGS.some((f) => f.name === k && f.name !== "config")) {
        throw new ConfigError(`--config ${configPath}: unknown key "${k}" (keys are flag names)`);
      }
    }
  }

  const raw = (name: string): { value: string; from: string } | undefined => {
    const f = flags.get(name);
    if (f !== undefined) return { value: f, from: `--${name}` };
    const e = env[envName(name)];
    if (e !== undefined && e !== "") return { value: e, from: envName(name) };
    if (name in file) {
      const v = file[name];
      const value = Array.isArray(v) ? v.join(",") : String(v);
      return { value, from: `"${name}" in ${configPath}` };
    }
    return undefined;
  };

  const dev = parseBool(raw("dev") ?? { value: "false", from: "default" });
  const get = (name: string): { value: string; from: string } => {
    const r = raw(name);
    if (r !== undefined) return r;
    const spec = AGENT_FLAGS.find((f) => f.name === name)!;
    return { value: dev && spec.devDef !== undefined ? spec.devDef : spec.def, from: "default" };
  };
  const check = <T>(name: string, parse: (v: string) => T, want: string): T => {
    const r = get(name);
    try {
      return parse(r.value);
    } catch (e) {
      throw new ConfigError(
        `${r.from}: "${r.value}" is invalid: ${want} (${errorText(e)})`,
      );
    }
  };
  const int = (name: string) => {
    const spec = AGENT_FLAGS.find((f) => f.name === name)!;
    const [lo, hi] = spec.range!;
    return check(name, (v) => {
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < lo || n > hi) throw new Error(`out of range`);
      return n;
    }, `expected an integer in ${lo}..${hi}`);
  };

  const bind = check("bind", (v) => parseHostPort(v), "expected IP:PORT like 127.0.0.1:8300");
  const advertiseRaw = get("advertise").value;
  const advertise = advertiseRaw === ""
    ? (bind.host === "0.0.0.0" || bind.host === "::" ? "127.0.0.1" : bind.host)
    : check("advertise", (v) => {
      if (!isIp(v)) throw new Error("not an IP");
      return v;
    }, "expected an IP address");
  const nodeName = get("node").value === "<hostname>"
    ? (opts.hostname ?? Deno.hostname())
    : check("node", (v) => {
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(v)) throw new Error("bad characters");
      return v;
    }, "expected letters, digits, '.', '_' or '-' (at most 63)");
  const edge = get("edge-domain").value;
  const docker = get("docker").value;
  const token = get("token").value;

  return {
    dev,
    node: nodeName,
    dataDir: check("data-dir", (v) => {
      if (v === "") throw new Error("empty");
      return v;
    }, "expected a directory path"),
    bind,
    advertise,
    bootstrap: check("bootstrap", (v) => parseBool({ value: v, from: "" }), "expected true|false"),
    join: get("join").value.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
      try {
        return formatHostPort(parseHostPort(s, 8300));
      } catch (e) {
        throw new ConfigError(
          `--join: "${s}" is invalid: expected IP[:PORT] (${errorText(e)})`,
        );
      }
    }),
    http: check("http", (v) => parseHostPort(v), "expected IP:PORT like 127.0.0.1:8500"),
    dns: check("dns", (v) => parseHostPort(v), "expected IP:PORT like 127.0.0.1:8600"),
    domain: check("domain", normalizeDomain, "expected a domain name"),
    recursor: check(
      "recursor",
      (v) =>
        v.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => parseHostPort(s, 53)),
      "expected IP[:PORT],…",
    ),
    edgeDomain: edge === ""
      ? null
      : check("edge-domain", normalizeDomain, "expected a domain name"),
    proxyHttp: check(
      "proxy-http",
      (v) => v === "off" ? null : parseHostPort(v),
      "expected IP:PORT or off",
    ),
    docker: docker === "off" ? null : check("docker", (v) => {
      if (!/^(unix:\/\/\/.+|https?:\/\/[^/]+\/?|tcp:\/\/[^/]+\/?)$/.test(v)) {
        throw new Error("scheme");
      }
      return v;
    }, "expected unix:///path/docker.sock, http://host:port or off"),
    internal: check("internal", (v) => parseBool({ value: v, from: "" }), "expected true|false"),
    voters: int("voters"),
    nodeTimeoutMs: check("node-timeout", parseDuration, "expected a duration like 10s"),
    reconcileIntervalMs: check("reconcile-interval", (v) => {
      const ms = parseDuration(v);
      if (ms < 1000) throw new Error("below 1s");
      return ms;
    }, "expected a duration of at least 1s"),
    dnsTtl: int("dns-ttl"),
    snapshotEntries: int("snapshot-entries"),
    token: token === "" ? null : token,
  };
}

function parseBool(r: { value: string; from: string }): boolean {
  if (["true", "1", "yes"].includes(r.value)) return true;
  if (["false", "0", "no"].includes(r.value)) return false;
  throw new ConfigError(`${r.from}: "${r.value}" is invalid: expected true|false`);
}

/** `berth agent --help` text: every flag with its default. */
export function agentHelp(): string {
  const lines = ["Usage: berth agent [flags]", "", "Flags (env BERTH_<FLAG>; flags win):"];
  for (const f of AGENT_FLAGS) {
    const def = f.def === "" ? "none" : f.def;
    const dev = f.devDef !== undefined ? `; ${f.devDef} with --dev` : "";
    lines.push(`  --${f.name.padEnd(20)} ${f.help} (default ${def}${dev})`);
  }
  return lines.join("\n");
}
