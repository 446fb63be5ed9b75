/**
 * The pure parts of `deno task bench http-features` (scripts/bench/http_features.ts): what each
 * variant turns on in berth (agent flags, route Meta keys) and the equivalent nginx directives,
 * the backend both proxy to, and the table of costs (variant / baseline per side).
 *
 * The variants, each measured on berth and on nginx with the same wrk request:
 * - baseline: a plain route (berth at its defaults, nginx `bench http`'s configuration);
 * - access log: one JSON line per request to a file (berth `--access-log FILE
 *   --access-log-format json`; nginx `access_log FILE` with a JSON `log_format`, buffered as
 *   berth's is: `buffer=64k flush=1s`);
 * - middlewares: basic auth (one bcrypt htpasswd user; wrk sends the right credentials), headers
 *   (a request header set, a response header set, one removed) and compression configured but
 *   not applied: the client sends no Accept-Encoding, so each response is checked and goes out
 *   as it is (the body is compressible text above both sides' minimum length: "off" means the
 *   client did not ask, not that the response did not qualify).
 *
 * @module
 */
import type { Outcome, Row } from "./_compare.ts";

/** A route middleware of the middleware variant. */
export type Middleware = "auth" | "headers" | "compress";
export const MIDDLEWARES: readonly Middleware[] = ["auth", "headers", "compress"];

/** The basic-auth user wrk sends (`Authorization` on every request of every side). */
export const USER = "bench";
export const PASSWORD = "bench-password";
/** bcrypt cost of the user's hash: `htpasswd -B`'s default. */
export const BCRYPT_COST = 5;

/** The request header set on the way in, the response header set and the one removed. */
export const REQUEST_HEADER = ["X-Bench", "1"] as const;
export const RESPONSE_HEADER = ["X-Served-By", "bench"] as const;
export const REMOVED_HEADER = "X-Backend-Secret";
/** The backend's echo of REQUEST_HEADER (so a probe sees it arrive). */
export const ECHO_HEADER = "X-Seen-Bench";

/** The backend's body: 2 KiB of text/plain, above the 1 KiB both sides compress from. */
export const BODY = "berth bench http-features: compressible text above the minimum length. "
  .repeat(29).slice(0, 2048);

/** The `Authorization` header of USER. */
export function authorization(): string {
  return `Basic ${btoa(`${USER}:${PASSWORD}`)}`;
}

/**
 * The static nginx backend (one worker): BODY as text/plain with REMOVED_HEADER, and
 * ECHO_HEADER carrying the request's REQUEST_HEADER when it has one.
 */
export function featureBackendConfig(o: { dir: string; host: string; port: number }): string {
  return `
worker_processes 1;
pid ${o.dir}/backend-${o.port}.pid;
error_log ${o.dir}/backend-${o.port}.error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${o.dir}; proxy_temp_path ${o.dir}; fastcgi_temp_path ${o.dir};
  uwsgi_temp_path ${o.dir}; scgi_temp_path ${o.dir};
  keepalive_requests 1000000;
  default_type text/plain;
  server {
    listen ${o.host}:${o.port};
    location / {
      add_header ${REMOVED_HEADER} backend;
      add_header ${ECHO_HEADER} $http_${REQUEST_HEADER[0].toLowerCase().replaceAll("-", "_")};
      return 200 "${BODY}";
    }
  }
}`;
}

/** A feature of berth this bench measures. */
export type Feature = Middleware | "log";
/** What this build has of each feature: undefined when it has it, else why not. */
export type Support = Record<Feature, string | undefined>;

/** What one variant turns on (an empty variant is the baseline). */
export interface Variant {
  /** The access log's file. */
  accessLog?: string;
  middlewares: readonly Middleware[];
}

/** berth's agent flags for `v`. */
export function berthArgs(v: Variant): string[] {
  return v.accessLog === undefined
    ? []
    : ["--access-log", v.accessLog, "--access-log-format", "json"];
}

/** berth's route Meta for `v` (besides the host); `hash` is USER's bcrypt hash. */
export function berthMeta(v: Variant, hash: string): Record<string, string> {
  const meta: Record<string, string> = {};
  if (v.middlewares.includes("auth")) meta["berth.http.auth.basic"] = `${USER}:${hash}`;
  if (v.middlewares.includes("headers")) {
    meta[`berth.http.request-header.${REQUEST_HEADER[0]}`] = REQUEST_HEADER[1];
    meta[`berth.http.response-header.${RESPONSE_HEADER[0]}`] = RESPONSE_HEADER[1];
    meta["berth.http.response-headers.remove"] = REMOVED_HEADER;
  }
  if (v.middlewares.includes("compress")) meta["berth.http.compress"] = "true";
  return meta;
}

/** The JSON access log format of nginx: the fields of berth's JSON line it has. */
const NGINX_LOG_FORMAT = `log_format bench_json escape=json '{"time":"$time_iso8601",` +
  `"client":"$remote_addr","method":"$request_method","host":"$host","path":"$request_uri",` +
  `"status":$status,"bytes_in":$request_length,"bytes_out":$bytes_sent,` +
  `"upstream":"$upstream_addr","duration_s":$request_time,"request_id":"$request_id"}';`;

/**
 * nginx's directives for `v` (for nginxProxyConfig's `extra`): `htpasswd` is the password file
 * of the auth middleware.
 */
export function nginxExtra(v: Variant, htpasswd: string): { http: string; location: string } {
  const http: string[] = [];
  const location: string[] = [];
  if (v.accessLog !== undefined) {
    http.push(NGINX_LOG_FORMAT);
    location.push(`access_log ${v.accessLog} bench_json buffer=64k flush=1s;`);
  }
  if (v.middlewares.includes("auth")) {
    location.push(`auth_basic "bench";`, `auth_basic_user_file ${htpasswd};`);
  }
  if (v.middlewares.includes("headers")) {
    location.push(
      `proxy_set_header ${REQUEST_HEADER[0]} ${REQUEST_HEADER[1]};`,
      `add_header ${RESPONSE_HEADER[0]} ${RESPONSE_HEADER[1]};`,
      `proxy_hide_header ${REMOVED_HEADER};`,
    );
  }
  if (v.middlewares.includes("compress")) {
    // berth's rules: text/* from 1 KiB, gzip level 4, Vary on what could be compressed.
    location.push(
      "gzip on;",
      "gzip_types text/plain;",
      "gzip_min_length 1024;",
      "gzip_comp_level 4;",
      "gzip_proxied any;",
      "gzip_vary on;",
    );
  }
  return { http: http.join("\n"), location: location.join("\n") };
}

/** "auth + headers + compress (not applied)" for the tables. */
export function middlewaresText(ms: readonly Middleware[]): string {
  return ms.map((m) => m === "compress" ? "compress (not applied)" : m).join(" + ");
}

/** A row of the cost table: each side's variant over its baseline (keys of measured sides). */
export interface CostRow {
  label: string;
  berth: { variant: string; base: string };
  anchor: { variant: string; base: string };
}

/** `a`'s rate and p99 over `b`'s: "0.93× req/s, p99 1.10×", or "—" when either has none. */
export function ratioText(
  outcomes: ReadonlyMap<string, Outcome>,
  a: string,
  b: string,
  unit: string,
): string {
  const x = outcomes.get(a);
  const y = outcomes.get(b);
  if (x === undefined || y === undefined || !("figure" in x) || !("figure" in y)) return "—";
  const rate = x.figure.rate / y.figure.rate;
  const p99 = x.figure.p99Ms / y.figure.p99Ms;
  return `${rate.toFixed(2)}× ${unit}, p99 ${p99.toFixed(2)}×`;
}

/** `| cost (variant / baseline) | berth | nginx |`, one line per row. */
export function costTable(
  rows: readonly CostRow[],
  outcomes: ReadonlyMap<string, Outcome>,
  unit: string,
): string[] {
  const lines = ["| cost (variant / baseline) | berth | nginx |", "|---|---|---|"];
  for (const r of rows) {
    const b = ratioText(outcomes, r.berth.variant, r.berth.base, unit);
    const a = ratioText(outcomes, r.anchor.variant, r.anchor.base, unit);
    lines.push(`| ${r.label} | ${b} | ${a} |`);
  }
  return lines;
}

/** The request count of a wrk report (`N requests in 10.00s`). */
export function wrkRequests(out: string): number {
  const m = /^\s*(\d+) requests in /m.exec(out);
  if (m === null) throw new Error(`wrk output has no request count:\n${out}`);
  return Number(m[1]);
}

/** The number of LF-terminated lines in `path`, read in chunks (the logs are large). */
export async function countLines(path: string): Promise<number> {
  using f = await Deno.open(path);
  const buf = new Uint8Array(1 << 16);
  let lines = 0;
  for (;;) {
    const n = await f.read(buf);
    if (n === null) return lines;
    for (let i = 0; i < n; i++) if (buf[i] === 10) lines++;
  }
}

/**
 * A variant measured on both sides: berth's side `berth-KEY` (or the one of pair `berthOf`,
 * measured once), nginx's `nginx-KEY`.
 */
export interface Pair {
  key: string;
  label: string;
  variant: Variant;
  /** berth's variant when it differs (the middlewares this build has). */
  berthVariant?: Variant;
  /** Why berth's side is not measured. */
  skip?: string;
  /** nginx's password file. */
  htpasswd: string;
  /** wrk sends `Accept-Encoding: gzip`. */
  gzip?: boolean;
  /** nginx's side's name, when not `label`. */
  nginxLabel?: string;
  /** berth's side is that of this pair (nginx alone differs: its password file). */
  berthOf?: string;
}

/**
 * The rows of a group of pairs (the first is the baseline): berth/nginx per pair, and each
 * side's pair over its baseline.
 */
export function tablesOf(pairs: readonly Pair[]): { rows: Row[]; costs: CostRow[] } {
  const berthKey = (p: Pair) => `berth-${p.berthOf ?? p.key}`;
  const rows = pairs.map((p) => ({ label: p.label, berth: berthKey(p), anchor: `nginx-${p.key}` }));
  const [base, ...rest] = pairs;
  if (base === undefined) return { rows, costs: [] };
  const costs = rest.map((p) => ({
    label: p.label,
    berth: { variant: berthKey(p), base: berthKey(base) },
    anchor: { variant: `nginx-${p.key}`, base: `nginx-${base.key}` },
  }));
  return { rows, costs };
}

/** USER's password files for nginx: bcrypt (the hash berth gets) and `{SSHA}`. */
export interface PasswordFiles {
  bcrypt: string;
  ssha: string;
}

/**
 * The main group: baseline, access log (`logs`: each side's file), the middlewares this build
 * has (nginx the same set; all three, berth's side skipped, when it has none), and those again
 * with nginx checking an `{SSHA}` password instead of bcrypt.
 */
export function featurePairs(
  support: Support,
  logs: { berth: string; nginx: string },
  htpasswd: PasswordFiles,
): Pair[] {
  const have = MIDDLEWARES.filter((m) => support[m] === undefined);
  const mws = have.length > 0 ? have : MIDDLEWARES;
  const pairs: Pair[] = [
    { key: "base", label: "baseline", variant: { middlewares: [] }, htpasswd: "" },
    {
      key: "log",
      label: "access log (JSON to a file)",
      variant: { accessLog: logs.nginx, middlewares: [] },
      berthVariant: { accessLog: logs.berth, middlewares: [] },
      skip: support.log,
      htpasswd: "",
    },
    {
      key: "mw",
      label: middlewaresText(mws),
      variant: { middlewares: mws },
      berthVariant: { middlewares: have },
      skip: have.length === 0 ? "this build applies none of the middlewares" : undefined,
      htpasswd: htpasswd.bcrypt,
    },
  ];
  if (mws.includes("auth")) {
    pairs.push({
      key: "mw-ssha",
      label: `${middlewaresText(mws)}, nginx with an {SSHA} password`,
      nginxLabel: `${middlewaresText(mws)}, {SSHA} password`,
      variant: { middlewares: mws },
      htpasswd: htpasswd.ssha,
      berthOf: "mw",
    });
  }
  return pairs;
}

/** Pairs of each middleware alone (and compression applied), after a baseline of their own. */
export function eachPairs(support: Support, htpasswd: PasswordFiles): Pair[] {
  const one = (key: string, m: Middleware, more: Partial<Pair> = {}): Pair => ({
    key,
    label: middlewaresText([m]),
    variant: { middlewares: [m] },
    skip: support[m],
    htpasswd: htpasswd.bcrypt,
    ...more,
  });
  return [
    { key: "each-base", label: "baseline", variant: { middlewares: [] }, htpasswd: "" },
    one("auth", "auth"),
    one("auth-ssha", "auth", {
      label: "auth, nginx with an {SSHA} password",
      nginxLabel: "auth, {SSHA} password",
      htpasswd: htpasswd.ssha,
      berthOf: "auth",
    }),
    one("headers", "headers"),
    one("compress", "compress"),
    one("gzip", "compress", { label: "compress applied (Accept-Encoding: gzip)", gzip: true }),
  ];
}
