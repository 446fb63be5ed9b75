/**
 * The agent's one typed, validated configuration. Sources, strongest first: command-line flags,
 * `BERTH_<FLAG>` environment variables (`--data-dir` → `BERTH_DATA_DIR`), the `--config` JSON
 * file (keys are flag names: `{"data-dir": "/srv/berth"}`), then embedded defaults (some differ
 * under `--dev`). A bad value stops with one line naming the input, what is wrong and what is
 * expected: `--dns-ttl abc: not an integer; expected an integer in 0..86400` (env:
 * `BERTH_DNS_TTL=abc: …`, file: `berth.json dns-ttl "abc": …`). An unknown `BERTH_` variable
 * gets a warning naming the closest known one.
 *
 * Over 500 lines: `loadConfig` builds the whole `Config` in one object literal, one line or
 * check per flag, so that every flag's parsing is found in one place (the flag table is
 * agent_flags.ts, ACME's part config_acme.ts).
 *
 * @module
 */

import { parseDuration } from "./lib/duration.ts";
import { cidrText, parseCidr } from "./lib/cidr.ts";
import { closest } from "./lib/closest.ts";
import { errorText } from "./lib/error_text.ts";
import { parseBool, parseFlags, parseIntIn } from "./lib/flags.ts";
import { AGENT_FLAGS, envName, OTHER_ENV_VARS, REMOVED_FLAGS, spec } from "./agent_flags.ts";

export { agentHelp } from "./agent_flags.ts";
export type { AcmeConfig } from "./config_acme.ts";
import {
  CLUSTER_PORT,
  formatHostPort,
  type HostPort,
  isIp,
  parseHostPort,
} from "./lib/host_port.ts";
import { checkNodeName, NODE_NAME_EXPECTED } from "./lib/node_name.ts";
import { parseDatacenter, parseServiceTtls } from "./lib/dns_flags.ts";
import { type JoinToken, parseJoinToken } from "./lib/join_token.ts";
import { type Ca, loadCa } from "./pki/mod.ts";
import { type AcmeConfig, acmeConfig } from "./config_acme.ts";

export interface Config {
  /** The `--config` file (or `BERTH_CONFIG`) read; null: none. SIGHUP reads it again. */
  configFile: string | null;
  dev: boolean;
  node: string;
  dataDir: string;
  bind: HostPort;
  advertise: string;
  bootstrap: boolean;
  join: string[];
  http: HostPort;
  /**
   * How the API serves: plain http; https from `--http-tls-cert`/`--http-tls-key` (paths, read
   * at start); or (`--http-tls auto`) https with a certificate the member issues from the CA.
   */
  httpTls: { mode: "off" } | { mode: "files"; cert: string; key: string } | { mode: "auto" };
  dns: HostPort;
  /** `--dns-workers`: threads answering DNS (1: the main thread; README "DNS workers"). */
  dnsWorkers: number;
  domain: string;
  datacenter: string;
  recursor: HostPort[];
  edgeDomain: string | null;
  proxyHttp: HostPort | null;
  /** The HTTPS listener of the proxy (same routes, certificates by SNI); null: off. */
  proxyHttps: HostPort | null;
  /** `--proxy-h2`: HTTP/2 (ALPN h2) on the HTTPS listener. */
  proxyH2: boolean;
  /** `--proxy-workers`: proxy threads (1: the main thread; default: the number of cores). */
  proxyWorkers: number;
  /**
   * `--proxy-protocol-from`: sources whose connections to the proxy's listeners must start with
   * a PROXY header (README "PROXY protocol"), canonical CIDRs; empty: none.
   */
  proxyProtocolFrom: string[];
  /**
   * `--request-id-from`: whose sane X-Request-Id the proxy keeps (README "X-Request-Id"): null
   * (`any`, the default) anyone's; canonical CIDRs, only those sources'; empty (`none`), no one's.
   */
  requestIdFrom: string[] | null;
  /** `--access-log`: `stdout`, a file path (opened for appending), or null (off). */
  accessLog: string | null;
  /** `--access-log-format`: JSON objects, or Apache's common or combined format. */
  accessLogFormat: "json" | "common" | "combined";
  docker: string | null;
  internal: boolean;
  /** `--expose-by-default`: false registers only containers labelled `berth.enable=true` or with `SERVICE_NAME`/`SERVICE_<port>_NAME` (desired.ts). */
  exposeByDefault: boolean;
  voters: number;
  nodeTimeoutMs: number;
  reconcileIntervalMs: number;
  /** `--drain-timeout`: how long SIGTERM waits for requests in flight (README "Shutdown and reload"). */
  drainTimeoutMs: number;
  dnsTtl: number;
  /** Lower-cased service name (or `*`) → TTL seconds of its DNS answers. */
  dnsServiceTtl: Map<string, number>;
  /** What tokens may do where their policies say nothing (src/acl/authorizer.ts). */
  aclDefault: "allow" | "deny";
  /** DNS names only what the anonymous token may read (service:read, node:read). */
  dnsAcl: boolean;
  snapshotEntries: number;
  /** Mutual TLS between members (`--tls`; off only with --dev). */
  tls: boolean;
  /** `--join-token` / BERTH_JOIN_TOKEN. */
  joinToken: JoinToken | null;
  /** `--ca-cert/--ca-key`, read and checked: the CA a bootstrap uses. */
  ca: Ca | null;
  /** `--cert-ttl`: lifetime of the member certificates this member issues. */
  certTtlMs: number;
  /** ACME (README "ACME"): what the leader orders certificates from, and for whom. */
  acme: AcmeConfig;
}

export class ConfigError extends Error {
  override name = "ConfigError";
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
  for (const arg of argv) {
    const name = /^--([a-z-]+)(=|$)/.exec(arg)?.[1];
    if (name !== undefined && Object.hasOwn(REMOVED_FLAGS, name)) {
      throw new ConfigError(`--${name} ${REMOVED_FLAGS[name]}`);
    }
  }
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
    // A secret's value is never shown in a message.
    const show = (v: string) => spec(name).secret ? "<redacted>" : shown(v);
    const f = flags.get(name);
    if (f !== undefined) return { value: f, label: `--${name} ${show(f)}` };
    const e = env[envName(name)];
    if (e !== undefined && e !== "") return { value: e, label: `${envName(name)}=${show(e)}` };
    if (Object.hasOwn(file, name)) {
      const v = file[name];
      const value = Array.isArray(v) ? v.join(",") : String(v);
      const text = spec(name).secret ? "<redacted>" : JSON.stringify(v);
      return { value, label: `${configPath} ${name} ${text}` };
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
  const httpTls = tlsMode(
    raw("http-tls-cert"),
    raw("http-tls-key"),
    get("http-tls", (v) => {
      if (v !== "auto" && v !== "off") throw new Error("unknown mode");
      return v;
    }),
  );
  const nodeRaw = raw("node");
  const node = nodeRaw === undefined
    ? defaultNodeName(opts.hostname ?? Deno.hostname())
    : check(nodeRaw, "node", (v) => (checkNodeName(v), v));

  const tls = get("tls", (v) => {
    if (v !== "on" && v !== "off") throw new Error("not on or off");
    return v === "on";
  });
  if (!tls && !dev) {
    throw new ConfigError(
      "--tls off: only together with --dev (members would talk plain TCP, unauthenticated); " +
        "production clusters keep --tls on",
    );
  }
  if (!tls && httpTls.mode === "auto") {
    throw new ConfigError(
      "--http-tls auto: needs --tls on (its certificate comes from the cluster CA, which " +
        "--tls off never makes); give --http-tls-cert/--http-tls-key or --http-tls off",
    );
  }
  const bootstrap = get("bootstrap", parseBool);
  const joinTokenRaw = raw("join-token");
  const joinToken = get("join-token", optional((v) => joinTokenOrFile(v, opts.readFile)));
  if (joinToken !== null && bootstrap) {
    throw new ConfigError(
      `${joinTokenRaw!.label}: not with --bootstrap (a new cluster makes its own join ` +
        "token; joining needs --bootstrap=false and --join)",
    );
  }
  if (joinToken !== null && !tls) {
    throw new ConfigError(
      `${joinTokenRaw!.label}: not with --tls off (members talk plain TCP and ask no token)`,
    );
  }
  const proxyHttp = get("proxy-http", (v) => v === "off" ? null : parseHostPort(v));
  const proxyHttps = get("proxy-https", (v) => v === "off" ? null : parseHostPort(v));
  if (
    proxyHttp !== null && proxyHttps !== null && proxyHttp.host === proxyHttps.host &&
    proxyHttp.port === proxyHttps.port
  ) {
    const label = raw("proxy-https")?.label ?? `default of --proxy-https`;
    throw new ConfigError(
      `${label}: the address of --proxy-http too; ` +
        "give the HTTPS listener a port of its own, or off",
    );
  }
  const proxyH2 = get("proxy-h2", parseBool) && proxyHttps !== null;
  if (raw("proxy-h2") !== undefined && get("proxy-h2", parseBool) && proxyHttps === null) {
    throw new ConfigError(
      `${raw("proxy-h2")?.label ?? "--proxy-h2"}: HTTP/2 is served on the HTTPS listener, ` +
        "which --proxy-https off turns off",
    );
  }
  const caCertPath = get("ca-cert", optional((v) => v));
  const caKeyPath = get("ca-key", optional((v) => v));
  let ca: Ca | null = null;
  if ((caCertPath === null) !== (caKeyPath === null)) {
    throw new ConfigError("--ca-cert and --ca-key go together: give both or neither");
  }
  if (caCertPath !== null && caKeyPath !== null) {
    if (!bootstrap || !tls) {
      throw new ConfigError("--ca-cert/--ca-key: only with --bootstrap (and --tls on)");
    }
    const read = (path: string, flag: string) => {
      try {
        return (opts.readFile ?? Deno.readTextFileSync)(path);
      } catch (e) {
        throw new ConfigError(`--${flag} ${shown(path)}: cannot read: ${errorText(e)}`);
      }
    };
    try {
      ca = loadCa(read(caCertPath, "ca-cert"), read(caKeyPath, "ca-key"));
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      throw new ConfigError(`--ca-cert ${shown(caCertPath)} --ca-key: ${errorText(e)}`);
    }
  }

  return {
    configFile: configPath ?? null,
    dev,
    node,
    dataDir: get("data-dir", (v) => {
      if (v === "") throw new Error("empty");
      return v;
    }),
    bind,
    advertise,
    bootstrap,
    join: get("join", addrList(CLUSTER_PORT)).map(formatHostPort),
    http: get("http", (v) => parseHostPort(v)),
    httpTls,
    dns: get("dns", (v) => parseHostPort(v)),
    dnsWorkers: int("dns-workers"),
    domain: get("domain", normalizeDomain),
    datacenter: get("datacenter", parseDatacenter),
    recursor: get("recursor", addrList(53)),
    edgeDomain: get("edge-domain", optional(normalizeDomain)),
    proxyHttp,
    proxyHttps,
    proxyH2,
    proxyWorkers: int("proxy-workers"),
    proxyProtocolFrom: get("proxy-protocol-from", parseCidrs),
    requestIdFrom: get("request-id-from", parseRequestIdFrom),
    accessLog: get("access-log", (v) => {
      if (v.trim() === "") throw new Error("empty");
      return v === "off" ? null : v;
    }),
    accessLogFormat: get("access-log-format", (v) => {
      if (v !== "json" && v !== "common" && v !== "combined") throw new Error("unknown format");
      return v;
    }),
    docker: get("docker", (v) => {
      if (v === "off") return null;
      if (!/^(unix|https?|tcp):\/\//.test(v)) throw new Error("unknown scheme");
      if (!/^(unix:\/\/\/.+|(https?|tcp):\/\/[^/]+\/?)$/.test(v)) throw new Error("malformed URL");
      return v;
    }),
    internal: get("internal", parseBool),
    exposeByDefault: get("expose-by-default", parseBool),
    voters: int("voters"),
    nodeTimeoutMs: get("node-timeout", parseDuration),
    reconcileIntervalMs: get("reconcile-interval", (v) => {
      const ms = parseDuration(v);
      if (ms < 1000) throw new Error("below 1s");
      return ms;
    }),
    drainTimeoutMs: get("drain-timeout", (v) => {
      const ms = parseDuration(v);
      if (ms > 3_600_000) throw new Error("above 1h");
      return ms;
    }),
    dnsTtl: int("dns-ttl"),
    dnsServiceTtl: get("dns-service-ttl", parseServiceTtls),
    snapshotEntries: int("snapshot-entries"),
    aclDefault: get("acl-default", (v) => {
      if (v !== "allow" && v !== "deny") throw new Error("not allow or deny");
      return v;
    }),
    tls,
    joinToken,
    ca,
    certTtlMs: get("cert-ttl", (v) => {
      const ms = parseDuration(v);
      if (ms < 60_000) throw new Error("below 1m");
      return ms;
    }),
    dnsAcl: get("dns-acl", parseBool),
    acme: acmeConfig(get, opts.readFile),
  };
}

/** --http-tls-cert and --http-tls-key come together, and not with --http-tls auto. */
function tlsMode(
  cert: Raw | undefined,
  key: Raw | undefined,
  mode: "auto" | "off",
): Config["httpTls"] {
  if ((cert === undefined) !== (key === undefined)) {
    const [given, missing] = cert === undefined
      ? [key!, "--http-tls-cert"]
      : [cert, "--http-tls-key"];
    throw new ConfigError(`${given.label}: ${missing} is missing; give both files or neither`);
  }
  if (cert !== undefined && key !== undefined) {
    if (mode === "auto") {
      throw new ConfigError(
        `${cert.label}: --http-tls auto issues its own certificate; give the files or auto, ` +
          "not both",
      );
    }
    return { mode: "files", cert: cert.value, key: key.value };
  }
  return { mode };
}

/**
 * A join token given as its text, or as a file holding it (`<data-dir>/join-token` of the first
 * member): a value with `::` is the token itself, anything else a path. An unreadable value is
 * named only when it looks like a path: it may be a token with its pin cut off.
 */
function joinTokenOrFile(
  v: string,
  readFile: (path: string) => string = Deno.readTextFileSync,
): JoinToken {
  if (v.includes("::")) return parseJoinToken(v);
  let text: string;
  try {
    text = readFile(v);
  } catch (e) {
    // Deno's message ends in "readfile '<path>'": cut, and never let the value through.
    const why = errorText(e).replace(/:? *readfile '.*'$/s, "").replaceAll(v, "<redacted>");
    const path = looksLikePath(v) ? ` ${shown(v)}` : "";
    throw new Error(
      `neither a join token (<id>.<secret>::sha256:<pin>) nor a readable file${path} (${why})`,
    );
  }
  try {
    return parseJoinToken(text);
  } catch (e) {
    throw new Error(`the file holds no join token: ${errorText(e)}`);
  }
}

/** `CIDR,…` → canonical CIDRs (`10.0.0.0/8`); empty → none. Throws naming the bad item. */
function parseCidrs(v: string): string[] {
  return v.split(",").map((x) => x.trim()).filter((x) => x !== "").map((x) => {
    const c = parseCidr(x);
    if (c === null) throw new Error(`"${x}" is not an IP address or CIDR`);
    return cidrText(c);
  });
}

/** `any` → null (every source), `none` → [] (no source), else `CIDR,…` (at least one). */
function parseRequestIdFrom(v: string): string[] | null {
  const t = v.trim();
  if (t === "any") return null;
  if (t === "none") return [];
  for (const x of t.split(",")) {
    const word = x.trim();
    if (word === "any" || word === "none") throw new Error(`"${word}" stands alone, not in a list`);
  }
  const cidrs = parseCidrs(t);
  if (cidrs.length === 0) throw new Error("empty");
  return cidrs;
}

/**
 * Whether a --join-token value that is no token may be shown as a path: it has a `/` or ends in
 * a file name extension, and does not start like a token's `<id>.<secret>`.
 */
function looksLikePath(v: string): boolean {
  if (/^[a-z0-9]{6}\.[A-Za-z0-9_-]{7,}/.test(v)) return false;
  return v.includes("/") || /\.[A-Za-z0-9]{1,5}$/.test(v) || /(^|[/-])join-token$/.test(v);
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
    if (Object.hasOwn(REMOVED_FLAGS, k)) throw new ConfigError(`${path} ${k} ${REMOVED_FLAGS[k]}`);
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
