/**
 * The agent's flags as data: each flag's name, kind, defaults (plain and under `--dev`), help
 * line and what a valid value looks like, in the order `berth agent --help` lists them.
 * config.ts reads values against this table; `agentHelp()` prints it.
 *
 * @module
 */

import { DURATION_EXPECTED } from "./lib/duration.ts";
import type { FlagSpec } from "./lib/flags.ts";
import { NODE_NAME_EXPECTED } from "./lib/node_name.ts";
import { JOIN_TOKEN_EXPECTED } from "./lib/join_token.ts";

export interface AgentFlag extends FlagSpec {
  /** `bool` takes no value when bare; the others name the value in help: `--bind ADDR`. */
  kind:
    | "bool"
    | "NAME"
    | "DIR"
    | "FILE"
    | "ADDR"
    | "ADDRS"
    | "CIDRS"
    | "IP"
    | "DOMAIN"
    | "DOMAINS"
    | "URL"
    | "EMAIL"
    | "D"
    | "N"
    | "T"
    | "MODE"
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
  /** Its value is a secret: messages never show it. */
  secret?: boolean;
}

/** `--acme-directory` by default: Let's Encrypt's production directory. */
export const ACME_DIRECTORY_DEFAULT = "https://acme-v02.api.letsencrypt.org/directory";

/** `--dns-workers` by default: the host's cores, at most 4. */
export const DNS_WORKERS_DEFAULT = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 4));

/** `--proxy-workers` by default: the host's cores (at most 64). */
export const PROXY_WORKERS_DEFAULT = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 64));

const ADDR_EXPECTED = (example: string) => `expected IP:PORT like ${example}`;

/** Every agent flag, in the order `berth agent --help` lists them. */
export const AGENT_FLAGS: readonly AgentFlag[] = [
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
    name: "join-token",
    kind: "T",
    def: "",
    help: "join token, or a file holding it (<data-dir>/join-token of the first member)",
    expect: JOIN_TOKEN_EXPECTED,
    secret: true,
  },
  {
    name: "tls",
    kind: "MODE",
    def: "on",
    help: "mutual TLS between members; off only with --dev",
    expect: "expected on or off (off only with --dev)",
  },
  {
    name: "ca-cert",
    kind: "FILE",
    def: "",
    defaultText: "a new CA",
    help: "with --bootstrap: the cluster CA's certificate (PEM, ECDSA P-256), with --ca-key",
    expect: "expected a PEM file path",
  },
  {
    name: "ca-key",
    kind: "FILE",
    def: "",
    help: "with --bootstrap: the cluster CA's private key (PEM), with --ca-cert",
    expect: "expected a PEM file path",
  },
  {
    name: "cert-ttl",
    kind: "D",
    def: "72h",
    help: "lifetime of member certificates this member issues, at least 1m (renewed at 2/3)",
    expect: `${DURATION_EXPECTED}, at least 1m`,
  },
  {
    name: "http",
    kind: "ADDR",
    def: "127.0.0.1:8500",
    help: "admin API and dashboard",
    expect: ADDR_EXPECTED("127.0.0.1:8500"),
  },
  {
    name: "http-tls",
    kind: "MODE",
    def: "off",
    help:
      "auto: serve the API over https with a certificate this member issues from the cluster CA",
    expect: "expected auto or off",
  },
  {
    name: "http-tls-cert",
    kind: "FILE",
    def: "",
    help: "serve the API over https with this PEM certificate (with --http-tls-key)",
    expect: "expected a PEM certificate file path",
  },
  {
    name: "http-tls-key",
    kind: "FILE",
    def: "",
    help: "the PEM private key of --http-tls-cert",
    expect: "expected a PEM key file path",
  },
  {
    name: "dns",
    kind: "ADDR",
    def: "127.0.0.1:8600",
    help: "DNS listen address, UDP and TCP",
    expect: ADDR_EXPECTED("127.0.0.1:8600"),
  },
  {
    name: "dns-workers",
    kind: "N",
    def: String(DNS_WORKERS_DEFAULT),
    defaultText: `min(cores, 4): ${DNS_WORKERS_DEFAULT} here`,
    range: [1, 64],
    help: "threads answering DNS (1: the main thread answers, as one process thread)",
    expect: "expected an integer in 1..64",
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
    name: "proxy-https",
    kind: "ADDR",
    def: "0.0.0.0:443",
    devDef: "127.0.0.1:8443",
    help: "HTTPS load balancer listen address (certificate by SNI), or off",
    expect: "expected IP:PORT like 0.0.0.0:443, or off",
  },
  {
    name: "proxy-h2",
    kind: "bool",
    def: "true",
    help: "HTTP/2 to HTTPS clients (ALPN h2); false offers HTTP/1.1 only",
    expect: "expected true or false",
  },
  {
    name: "proxy-workers",
    kind: "N",
    def: String(PROXY_WORKERS_DEFAULT),
    defaultText: `the number of cores: ${PROXY_WORKERS_DEFAULT} here`,
    range: [1, 64],
    help: "proxy worker threads sharing the proxy's ports; 1 proxies on the main thread",
    expect: "expected an integer in 1..64",
  },
  {
    name: "proxy-protocol-from",
    kind: "CIDRS",
    def: "",
    defaultText: "none",
    help: "sources whose proxy connections must start with a PROXY header (v1/v2), CIDR,…",
    expect: "expected CIDR,… like 10.0.0.0/8,192.168.1.7",
  },
  {
    name: "request-id-from",
    kind: "CIDRS",
    def: "any",
    help: "clients (or PROXY-protocol balancers) whose X-Request-Id the proxy keeps (others get " +
      "a new one): any, none or CIDR,…",
    expect: "expected any, none or CIDR,… like 10.0.0.0/8,192.168.1.7",
  },
  {
    name: "access-log",
    kind: "FILE",
    def: "off",
    help:
      "a line per proxied HTTP request to stdout or FILE (appended; SIGUSR1 reopens it), or off",
    expect: "expected stdout, off or a file path",
  },
  {
    name: "access-log-format",
    kind: "MODE",
    def: "json",
    help: "access log lines: json (an object per request), common or combined (Apache's formats)",
    expect: "expected json, common or combined",
  },
  {
    name: "acme-directory",
    kind: "URL",
    def: ACME_DIRECTORY_DEFAULT,
    defaultText: "Let's Encrypt production",
    help: "ACME directory the leader orders certificates from (berth.tls=acme, --acme-all)",
    expect: "expected an https:// URL like https://acme-v02.api.letsencrypt.org/directory",
  },
  {
    name: "acme-email",
    kind: "EMAIL",
    def: "",
    help: "contact address of the cluster's ACME account",
    expect: "expected an email address like ops@example.com",
  },
  {
    name: "acme-ca-cert",
    kind: "FILE",
    def: "",
    defaultText: "the system's roots",
    help: "PEM certificates to trust for the ACME server (a test CA such as pebble)",
    expect: "expected a PEM file of certificates",
  },
  {
    name: "acme-all",
    kind: "bool",
    def: "false",
    help: "order certificates for every routed host, not only berth.tls=acme services",
    expect: "expected true or false",
  },
  {
    name: "acme-domains",
    kind: "DOMAINS",
    def: "",
    defaultText: "any routed name",
    help: "order certificates only for these domains and the names under them (A,B,…)",
    expect: "expected DNS names like example.com,example.org",
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
    name: "expose-by-default",
    kind: "bool",
    def: "true",
    help:
      "register every container; =false: only those labelled berth.enable=true or with SERVICE_NAME / SERVICE_<port>_NAME",
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
    name: "drain-timeout",
    kind: "D",
    def: "10s",
    help: "how long SIGTERM lets requests in flight finish before the agent exits, at most 1h",
    expect: `${DURATION_EXPECTED}, at most 1h`,
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
    name: "acl-default",
    kind: "MODE",
    def: "deny",
    devDef: "allow",
    help:
      "what a token may do where its policies say nothing, and the anonymous token: allow or deny",
    expect: "expected allow or deny",
  },
  {
    name: "dns-acl",
    kind: "bool",
    def: "false",
    help: "DNS answers only the services and nodes the anonymous token may read",
    expect: "expected true or false",
  },
];

/**
 * Flags berth no longer has, with what replaced them: giving one stops the agent with this line
 * (flag, env or config file key), instead of a bare "unknown flag".
 */
export const REMOVED_FLAGS: Readonly<Record<string, string>> = {
  token: "was removed: the API takes ACL tokens now; use the management token that --bootstrap " +
    "writes to <data-dir>/management-token, and make others with `berth acl token create`",
};

/** `BERTH_` variables that are not agent flags: the client commands' and the test scripts'. */
export const OTHER_ENV_VARS: readonly string[] = [
  "BERTH_HTTP_ADDR",
  "BERTH_CACERT",
  "BERTH_SNAPSHOT_PASSPHRASE",
  "BERTH_TOKEN",
  "BERTH_TEST_IMAGE",
  // 1: the agent runs the event-loop probe that GET /v1/berth/loop reads (benches set it).
  "BERTH_LOOP_PROBE",
];

/** The flag named `name`. */
export function spec(name: string): AgentFlag {
  const s = AGENT_FLAGS.find((f) => f.name === name);
  if (s === undefined) throw new Error(`no agent flag --${name}`); // a bug in config.ts
  return s;
}

/** `--data-dir` → `BERTH_DATA_DIR`. */
export function envName(flag: string): string {
  return `BERTH_${flag.toUpperCase().replaceAll("-", "_")}`;
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
