/**
 * The agent's one typed, validated configuration. Sources, strongest first: command-line flags,
 * `BERTH_<FLAG>` environment variables (`--data-dir` → `BERTH_DATA_DIR`), the `--config` JSON
 * file (keys are flag names: `{"data-dir": "/srv/berth"}`), then embedded defaults (some differ
 * under `--dev`). A bad value stops with one line naming the input, what is wrong and what is
 * expected: `--dns-ttl abc: not an integer; expected an integer in 0..86400` (env:
 * `BERTH_DNS_TTL=abc: …`, file: `berth.json dns-ttl "abc": …`). An unknown `BERTH_` variable
 * gets a warning naming the closest known one.
 *
 * @module
 */

import { DURATION_EXPECTED, parseDuration } from "./lib/duration.ts";
import { closest } from "./lib/closest.ts";
import { errorText } from "./lib/error_text.ts";
import { type FlagSpec, parseBool, parseFlags, parseIntIn } from "./lib/flags.ts";
import {
  CLUSTER_PORT,
  formatHostPort,
  type HostPort,
  isIp,
  parseHostPort,
} from "./lib/host_port.ts";
import { checkNodeName, NODE_NAME_EXPECTED } from "./lib/node_name.ts";
import { parseDatacenter, parseServiceTtls } from "./lib/dns_flags.ts";

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
  datacenter: string;
  recursor: HostPort[];
  edgeDomain: string | null;
  proxyHttp: HostPort | null;
  docker: string | null;
  internal: boolean;
  voters: number;
  nodeTimeoutMs: number;
  reconcileIntervalMs: number;
  dnsTtl: number;
  /** Lower-cased service name (or `*`) → TTL seconds of its DNS answers. */
  dnsServiceTtl: Map<string, number>;
  token: string | null;
  snapshotEntries: number;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

interface AgentFlag extends FlagSpec {
  /** `bool` takes no value when bare; the others name the value in help: `--bind ADDR`. */
  kind:
    | "bool"
    | "NAME"
    | "DIR"
    | "FILE"
    | "ADDR"
    | "ADDRS"
    | "IP"
    | "DOMAIN"
    | "URL"
    | "D"
    | "N"
    | "T"
    | "NAME=D";
  /** Embedded default ("" for none). */
  def: string;
  /** Default under --dev, when it differs. */
  devDef?: string;
  /** How help shows a default that is not a plain value (the hostname, the host of --bind). */
  defaultText?: string;
  help: string;
  /** What a valid value looks like, for messages: `expected …`. */
  expect: string;
  /** Allowed range of an integer flag. */
  range?: [number, number];
}

const ADDR_EXPECTED = (example: string) => `expected IP:PORT like ${example}`;

/** Every agent flag, in the order `berth agent --help` lists them. */
const AGENT_FLAGS: readonly AgentFlag[] = [
  {
    name: "config",
    kind: "FILE",
    def: "",
    help: "JSON file of flag values (flags and env win)",
    expect: "expected a file path",
  },
  {
    name: "dev",
    kind: "bool",
    def: "false",
    help: "single-node cluster, data in ./data, everything on 127.0.0.1",
    expect: "expected true or false",
  },
  {
    name: "node",
    kind: "NAME",
    def: "",
    defaultText: "the hostname",
    help: "unique member name",
    expect: NODE_NAME_EXPECTED,
  },
  {
    name: "data-dir",
    kind: "DIR",
    def: "/var/lib/berth",
    devDef: "./data",
    help: "directory for the SQLite files",
    expect: "expected a directory path",
  },
  {
    name: "bind",
    kind: "ADDR",
    def: "127.0.0.1:8300",
    help: "cluster (Raft RPC) listen address",
    expect: ADDR_EXPECTED("127.0.0.1:8300"),
  },
  {
    name: "advertise",
    kind: "IP",
    def: "",
    defaultText: "the host of --bind, or 127.0.0.1 when that is 0.0.0.0 or ::",
    help: "address other members use; also registered for ports published on 0.0.0.0",
    expect: "expected an IP address like 10.0.0.5",
  },
  {
    name: "bootstrap",
    kind: "bool",
    def: "false",
    devDef: "true",
    help: "start a new cluster with this node as its first voter",
    expect: "expected true or false",
  },
  {
    name: "join",
    kind: "ADDRS",
    def: "",
    help: "members to join through, comma-separated IP[:PORT]",
    expect: "expected IP[:PORT],… like 10.0.0.5,10.0.0.6:8300",
  },
  {
    name: "http",
    kind: "ADDR",
    def: "127.0.0.1:8500",
    help: "admin API and dashboard",
    expect: ADDR_EXPECTED("127.0.0.1:8500"),
  },
  {
    name: "dns",
    kind: "ADDR",
    def: "127.0.0.1:8600",
    help: "DNS listen address, UDP and TCP",
    expect: ADDR_EXPECTED("127.0.0.1:8600"),
  },
  {
    name: "domain",
    kind: "DOMAIN",
    def: "berth.",
    help: "DNS domain (consul. for Consul names)",
    expect: "expected a domain name like berth. or example.com",
  },
  {
    name: "datacenter",
    kind: "NAME",
    def: "dc1",
    help: "datacenter name, as in NAME.service.DC.DOMAIN and the API",
    expect: "expected 1 to 63 lower-case letters, digits, - or _, like dc1",
  },
  {
    name: "recursor",
    kind: "ADDRS",
    def: "",
    help: "upstream resolvers for other names, comma-separated IP[:PORT]",
    expect: "expected IP[:PORT],… like 1.1.1.1,9.9.9.9:53",
  },
  {
    name: "edge-domain",
    kind: "DOMAIN",
    def: "",
    help: "names under it resolve to the healthy proxy members, TTL 0",
    expect: "expected a domain name like edge.example.com",
  },
  {
    name: "proxy-http",
    kind: "ADDR",
    def: "0.0.0.0:80",
    devDef: "127.0.0.1:8080",
    help: "HTTP load balancer listen address, or off",
    expect: "expected IP:PORT like 0.0.0.0:80, or off",
  },
  {
    name: "docker",
    kind: "URL",
    def: "unix:///var/run/docker.sock",
    help: "Docker engine URL (unix:// or http://), or off",
    expect: "expected unix:///path/docker.sock, http://HOST:PORT or off",
  },
  {
    name: "internal",
    kind: "bool",
    def: "false",
    help: "register container IP and port instead of published host ports",
    expect: "expected true or false",
  },
  {
    name: "voters",
    kind: "N",
    def: "3",
    range: [1, 7],
    help: "voting members the cluster grows to; later members stay learners",
    expect: "expected an integer in 1..7",
  },
  {
    name: "node-timeout",
    kind: "D",
    def: "10s",
    help: "silence after which a member's instances are marked critical",
    expect: DURATION_EXPECTED,
  },
  {
    name: "reconcile-interval",
    kind: "D",
    def: "30s",
    help: "full Docker reconcile period (events reconcile at once), at least 1s",
    expect: `${DURATION_EXPECTED}, at least 1s`,
  },
  {
    name: "dns-ttl",
    kind: "N",
    def: "0",
    range: [0, 86400],
    help: "TTL of service answers, seconds",
    expect: "expected an integer in 0..86400",
  },
  {
    name: "dns-service-ttl",
    kind: "NAME=D",
    def: "",
    repeatable: true,
    defaultText: "--dns-ttl",
    help: "TTL of one service's answers (* for every other), repeatable or comma-separated",
    expect: "expected NAME=DURATION,… like web=30s,*=5s, whole seconds up to 86400s",
  },
  {
    name: "snapshot-entries",
    kind: "N",
    def: "8192",
    range: [16, 10_000_000],
    help: "applied log entries after which the store is snapshotted and the log compacted",
    expect: "expected an integer in 16..10000000",
  },
  {
    name: "token",
    kind: "T",
    def: "",
    defaultText: "none: writes are open",
    help: "API token required on writes",
    expect: "expected a token",
  },
];

/** `BERTH_` variables that are not agent flags: the client commands' and the test scripts'. */
const OTHER_ENV_VARS: readonly string[] = ["BERTH_HTTP_ADDR", "BERTH_TEST_IMAGE"];

function spec(name: string): AgentFlag {
  const s = AGENT_FLAGS.find((f) => f.name === name);
  if (s === undefined) throw new Error(`no agent flag --${name}`); // a bug in this file
  return s;
}

/** `--data-dir` → `BERTH_DATA_DIR`. */
function envName(flag: string): string {
  return `BERTH_${flag.toUpperCase().replaceAll("-", "_")}`;
}

export interface LoadOptions {
  /** Environment (default: the process's). */
  env?: Record<string, string | undefined>;
  /** Reads the --config file (default: Deno.readTextFileSync). */
  readFile?: (path: string) => string;
  /** The default of --node (default: Deno.hostname()). */
  hostname?: string;
  /** Called once per line worth a warning, such as an unknown BERTH_ variable (default: stderr). */
  warn?: (line: string) => void;
}

/** Where a raw value came from, shown in front of every message about it. */
interface Raw {
  value: string;
  /** `--dns-ttl abc`, `BERTH_DNS_TTL=abc`, `berth.json dns-ttl "abc"`. */
  label: string;
}

/** A value as a message shows it: bare when it is one printable word, else quoted. */
function shown(v: string): string {
  const clipped = v.length > 80 ? `${v.slice(0, 79)}…` : v;
  return /^[!#-~]+$/.test(clipped) ? clipped : JSON.stringify(clipped);
}

/** Builds the Config from argv, env, the config file and defaults. Throws ConfigError. */
export function loadConfig(argv: readonly string[], opts: LoadOptions = {}): Config {
  const env = opts.env ?? Deno.env.toObject();
  let flags: Map<string, string>;
  try {
    flags = parseFlags(argv, AGENT_FLAGS, { positionals: false }).values;
  } catch (e) {
    throw new ConfigError(`${errorText(e)} (see berth agent --help)`);
  }
  const warn = opts.warn ?? ((line: string) => console.error(`berth agent: ${line}`));
  for (const line of unknownEnvWarnings(env)) warn(line);
  const configFlag = flags.get("config");
  const configPath = configFlag ?? (env[envName("config")] || undefined);
  const file = configPath === undefined ? {} : readConfigFile(
    configPath,
    configFlag !== undefined
      ? `--config ${shown(configPath)}`
      : `BERTH_CONFIG=${shown(configPath)}`,
    opts.readFile,
  );

  const raw = (name: string): Raw | undefined => {
    const f = flags.get(name);
    if (f !== undefined) return { value: f, label: `--${name} ${shown(f)}` };
    const e = env[envName(name)];
    if (e !== undefined && e !== "") return { value: e, label: `${envName(name)}=${shown(e)}` };
    if (Object.hasOwn(file, name)) {
      const v = file[name];
      const value = Array.isArray(v) ? v.join(",") : String(v);
      return { value, label: `${configPath} ${name} ${JSON.stringify(v)}` };
    }
    return undefined;
  };
  const check = <T>(r: Raw, name: string, parse: (v: string) => T): T => {
    try {
      return parse(r.value);
    } catch (e) {
      throw new ConfigError(`${r.label}: ${errorText(e)}; ${spec(name).expect}`);
    }
  };
  const dev = check(raw("dev") ?? { value: "false", label: "" }, "dev", parseBool);
  /** The value of a flag from the strongest source, or its default; parsed by `parse`. */
  const get = <T>(name: string, parse: (v: string) => T): T => {
    const s = spec(name);
    const def = dev && s.devDef !== undefined ? s.devDef : s.def;
    return check(
      raw(name) ?? { value: def, label: `default of --${name} ${shown(def)}` },
      name,
      parse,
    );
  };
  const int = (name: string) => get(name, (v) => parseIntIn(v, spec(name).range!));
  const optional = <T>(parse: (v: string) => T) => (v: string): T | null =>
    v === "" ? null : parse(v);
  const addrList = (defaultPort: number) => (v: string): HostPort[] =>
    v.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) =>
      parseHostPort(s, defaultPort)
    );

  const bind = get("bind", (v) => parseHostPort(v));
  const wildcard = bind.host === "0.0.0.0" || bind.host === "::";
  const advertise = get(
    "advertise",
    optional((v) => {
      if (!isIp(v)) throw new Error("not an IP address");
      return v;
    }),
  ) ?? (wildcard ? "127.0.0.1" : bind.host);
  const nodeRaw = raw("node");
  const node = nodeRaw === undefined
    ? defaultNodeName(opts.hostname ?? Deno.hostname())
    : check(nodeRaw, "node", (v) => (checkNodeName(v), v));

  return {
    dev,
    node,
    dataDir: get("data-dir", (v) => {
      if (v === "") throw new Error("empty");
      return v;
    }),
    bind,
    advertise,
    bootstrap: get("bootstrap", parseBool),
    join: get("join", addrList(CLUSTER_PORT)).map(formatHostPort),
    http: get("http", (v) => parseHostPort(v)),
    dns: get("dns", (v) => parseHostPort(v)),
    domain: get("domain", normalizeDomain),
    datacenter: get("datacenter", parseDatacenter),
    recursor: get("recursor", addrList(53)),
    edgeDomain: get("edge-domain", optional(normalizeDomain)),
    proxyHttp: get("proxy-http", (v) => v === "off" ? null : parseHostPort(v)),
    docker: get("docker", (v) => {
      if (v === "off") return null;
      if (!/^(unix|https?|tcp):\/\//.test(v)) throw new Error("unknown scheme");
      if (!/^(unix:\/\/\/.+|(https?|tcp):\/\/[^/]+\/?)$/.test(v)) throw new Error("malformed URL");
      return v;
    }),
    internal: get("internal", parseBool),
    voters: int("voters"),
    nodeTimeoutMs: get("node-timeout", parseDuration),
    reconcileIntervalMs: get("reconcile-interval", (v) => {
      const ms = parseDuration(v);
      if (ms < 1000) throw new Error("below 1s");
      return ms;
    }),
    dnsTtl: int("dns-ttl"),
    dnsServiceTtl: get("dns-service-ttl", parseServiceTtls),
    snapshotEntries: int("snapshot-entries"),
    token: get("token", optional((v) => v)),
  };
}

/** The hostname as the default member name, checked like --node. */
function defaultNodeName(hostname: string): string {
  try {
    checkNodeName(hostname);
  } catch (e) {
    throw new ConfigError(
      `--node not given, and the hostname ${shown(hostname)} is no member name: ${
        errorText(e)
      }; ${NODE_NAME_EXPECTED} (set --node)`,
    );
  }
  return hostname;
}

/** The --config file's flag values; `label` names where its path came from, for messages. */
function readConfigFile(
  path: string,
  label: string,
  readFile: (path: string) => string = Deno.readTextFileSync,
): Record<string, unknown> {
  let text: string;
  try {
    text = readFile(path);
  } catch (e) {
    throw new ConfigError(`${label}: cannot read: ${errorText(e)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${label}: not JSON: ${errorText(e)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${label}: not a JSON object; expected {"flag": value}`);
  }
  const file = parsed as Record<string, unknown>;
  for (const [k, v] of Object.entries(file)) {
    if (!AGENT_FLAGS.some((f) => f.name === k && f.name !== "config")) {
      const near = closest(k, AGENT_FLAGS.map((f) => f.name));
      throw new ConfigError(
        `${path} ${JSON.stringify(k)}: unknown key; expected a flag name` +
          (near === null ? "" : ` (did you mean "${near}"?)`),
      );
    }
    const scalar = ["string", "number", "boolean"].includes(typeof v);
    const list = Array.isArray(v) && v.every((x) => typeof x === "string");
    if (!scalar && !list) {
      throw new ConfigError(
        `${path} ${k} ${JSON.stringify(v).slice(0, 80)}: not a string, number, boolean or ` +
          `list of strings; ${spec(k).expect}`,
      );
    }
  }
  return file;
}

/**
 * One warning per `BERTH_` variable that is neither an agent flag's nor another known one, with
 * the closest known name: `BERTH_DNSTTL=3` is otherwise ignored without a word.
 */
function unknownEnvWarnings(env: Record<string, string | undefined>): string[] {
  const known = [...AGENT_FLAGS.map((f) => envName(f.name)), ...OTHER_ENV_VARS];
  const out: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith("BERTH_") || known.includes(name)) continue;
    const near = closest(name, known);
    out.push(
      `ignoring ${name}: not a berth setting` +
        (near === null ? " (see berth agent --help)" : ` (did you mean ${near}?)`),
    );
  }
  return out;
}

/** Lower case with a trailing dot; throws saying what is wrong with the name. */
function normalizeDomain(s: string): string {
  const d = s.toLowerCase().replace(/\.?$/, ".");
  if (d === ".") throw new Error("empty");
  if (d.length > 254) throw new Error(`${d.length - 1} characters, more than 253`);
  for (const label of d.slice(0, -1).split(".")) {
    if (label === "") throw new Error("an empty label (two dots in a row)");
    if (label.length > 63) throw new Error(`a label of ${label.length} characters, more than 63`);
    const bad = /[^a-z0-9-]/.exec(label);
    if (bad !== null) throw new Error(`has ${JSON.stringify(bad[0])}`);
    if (label.startsWith("-") || label.endsWith("-")) {
      throw new Error(`the label "${label}" starts or ends with '-'`);
    }
  }
  return d;
}

/** `berth agent --help` text: every flag with its default. */
export function agentHelp(): string {
  const lines = [
    "Usage: berth agent [flags]",
    "",
    "Flags (or env BERTH_<FLAG>, or keys of the --config file; flags win, then env):",
  ];
  for (const f of AGENT_FLAGS) {
    const left = f.kind === "bool" ? `--${f.name}` : `--${f.name} ${f.kind}`;
    const range = f.range === undefined ? "" : `${f.range[0]}..${f.range[1]}, `;
    const def = f.defaultText ?? (f.def === "" ? "none" : f.def);
    const dev = f.devDef !== undefined ? `; ${f.devDef} with --dev` : "";
    lines.push(`  ${left.padEnd(26)} ${f.help} (${range}default ${def}${dev})`);
  }
  return lines.join("\n");
}
