/**
 * `deno task bench http-features`: what berth's access log and route middlewares cost, beside
 * nginx with the equivalent configuration, in one run. Each variant (baseline, access log on,
 * three middlewares on: scripts/bench/_http_features.ts) runs on berth at its defaults
 * (`--proxy-workers` = cores) and on nginx `worker_processes auto` (as `bench http`'s defaults
 * group; the sides and their probes: scripts/bench/_http_features_sides.ts), each side with
 * a static nginx backend of its own, the same wrk request for all (`wrk -t1 -c32 --latency`, env
 * BENCH_HTTP_THREADS, BENCH_HTTP_CONNECTIONS; Host and the basic-auth credentials on every
 * request, no Accept-Encoding), every side in one group of scripts/bench/_compare.ts (in turn,
 * then in reverse). Printed: each variant berth vs nginx, and each side's variant / its baseline.
 *
 * nginx checks a bcrypt password with crypt(3) on every request; berth remembers a verdict. So
 * the middleware variant runs on nginx twice: with the same bcrypt file, and with a salted SHA-1
 * (`{SSHA}`) one, the cost of its middlewares without bcrypt's.
 *
 * Before measuring, one berth agent is probed for each feature (a request without credentials
 * gets 401, the headers arrive and go, a gzip-accepting request is compressed, the log file gets
 * a JSON line); a feature this build lacks is left out with a line saying so, and nginx gets the
 * same set. Every side is probed the same way before its runs, then warmed up.
 *
 * With env BENCH_HTTP_FEATURES_EACH=1 a second group measures each middleware alone, and
 * compression applied (wrk sends `Accept-Encoding: gzip`), against a baseline of its own.
 *
 * @module
 */
import bcrypt from "bcryptjs";
import { SECONDS } from "./_shared.ts";
import { envCount, wrkFigures } from "./http.ts";
import { runClient } from "./_proc.ts";
import {
  details,
  measureGroup,
  type Outcome,
  type RunFigures,
  type Running,
  type SideSpec,
  table,
} from "./_compare.ts";
import {
  BCRYPT_COST,
  BODY,
  costTable,
  countLines,
  eachPairs,
  featurePairs,
  type Pair,
  PASSWORD,
  tablesOf,
  wrkRequests,
} from "./_http_features.ts";
import {
  berthSide,
  berthSupport,
  HOST,
  nginxSide,
  WARM_SECONDS,
  writePasswordFiles,
  wrkOptions,
} from "./_http_features_sides.ts";

const CORES = navigator.hardwareConcurrency;

/** Everything a group's sides share. */
interface Context {
  dir: string;
  hash: string;
  sent: Map<string, number>;
}

/** The group's sides: each pair's berth side (unless berthOf) and nginx side. */
function sidesOf(pairs: readonly Pair[], c: Context): SideSpec[] {
  const sides: SideSpec[] = [];
  for (const p of pairs) {
    const common = { variant: p.variant, sent: c.sent, gzip: p.gzip };
    if (p.berthOf === undefined) {
      sides.push(berthSide(c.dir, {
        ...common,
        key: `berth-${p.key}`,
        name: `berth ${p.label}`,
        variant: p.berthVariant ?? p.variant,
        hash: c.hash,
        skip: p.skip,
      }));
    }
    sides.push(nginxSide(c.dir, {
      ...common,
      key: `nginx-${p.key}`,
      name: `nginx ${p.nginxLabel ?? p.label}`,
      htpasswd: p.htpasswd,
    }));
  }
  return sides;
}

/**
 * Measures a group of pairs (the first is the baseline) and prints berth/nginx per pair, each
 * side's pair/baseline, and one detail line per side.
 */
async function measurePairs(
  title: string,
  pairs: readonly Pair[],
  c: Context,
): Promise<{ sides: SideSpec[]; outcomes: Map<string, Outcome> }> {
  const gzip = new Set(
    pairs.filter((p) => p.gzip).flatMap((p) => [`berth-${p.key}`, `nginx-${p.key}`]),
  );
  const wrkArgs = [...wrkOptions(SECONDS), "--latency"];
  const measure = async (s: SideSpec, r: Running): Promise<RunFigures> => {
    const extra = gzip.has(s.key) ? ["-H", "Accept-Encoding: gzip"] : [];
    const run = await runClient("wrk", [...wrkArgs, ...extra, `http://${HOST}:${r.port}/`], {
      limitSeconds: SECONDS + 30,
    });
    c.sent.set(s.key, (c.sent.get(s.key) ?? 0) + wrkRequests(run.stdout));
    return { ...wrkFigures(run.stdout), clientCpuMs: run.cpuMs, wallMs: run.wallMs };
  };
  const sides = sidesOf(pairs, c);
  const outcomes = await measureGroup(sides, measure);
  const { rows, costs } = tablesOf(pairs);
  console.log(table(title, rows, sides, outcomes, "req/s").join("\n"));
  console.log(costTable(costs, outcomes, "req/s").join("\n"));
  console.log(details(sides, outcomes, { unit: "req/s", client: "wrk" }).join("\n"));
  return { sides, outcomes };
}

export async function benchHttpFeatures(): Promise<void> {
  const client = `wrk -t${envCount("BENCH_HTTP_THREADS", 1)} -c${
    envCount("BENCH_HTTP_CONNECTIONS", 32)
  }`;
  const dir = Deno.makeTempDirSync({ prefix: "berth-bench-features-" });
  const failed: string[] = [];
  try {
    const hash = bcrypt.hashSync(PASSWORD, BCRYPT_COST);
    const htpasswd = writePasswordFiles(dir, hash);
    const c: Context = { dir, hash, sent: new Map() };
    console.log(
      `http-features  ${client} --latency, ${SECONDS}s per run, each side twice (in turn, ` +
        `then in reverse) after a ${WARM_SECONDS}s warm-up; berth at its defaults ` +
        `(--proxy-workers ${CORES}) and nginx worker_processes auto, each its own nginx ` +
        `backend (1 worker, ${BODY.length} bytes text/plain); every request: Host, basic-auth ` +
        `credentials, no Accept-Encoding (unless said)`,
    );
    const support = await berthSupport(dir, hash);
    for (const [f, why] of Object.entries(support)) {
      if (why !== undefined) console.log(`http-features  berth ${f}: ${why}`);
    }
    const log = (who: string) => `${dir}/${who}-access.log`;
    const pairs = featurePairs(support, { berth: log("berth"), nginx: log("nginx") }, htpasswd);
    const groups: [string, Pair[]][] = [[`HTTP features (${client})`, pairs]];
    if (Deno.env.get("BENCH_HTTP_FEATURES_EACH") === "1") {
      groups.push([`HTTP middlewares one by one (${client})`, eachPairs(support, htpasswd)]);
    }
    for (const [title, group] of groups) {
      const { sides, outcomes } = await measurePairs(title, group, c);
      for (const s of sides) {
        const o = outcomes.get(s.key);
        if (o === undefined || ("failure" in o && !o.failure.startsWith("skipped"))) {
          failed.push(s.name);
        }
      }
      if (group !== pairs) continue;
      for (const who of ["berth", "nginx"]) {
        const o = outcomes.get(`${who}-log`);
        if (o === undefined || !("figure" in o)) continue;
        const lines = await countLines(log(who));
        console.log(
          `http-features  ${who}'s access log: ${lines} lines for ${c.sent.get(`${who}-log`)} ` +
            `requests wrk counted, warm-up included (besides: the probes' few, and up to one ` +
            `per connection in flight at each run's end)`,
        );
      }
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  if (failed.length > 0) throw new Error(`sides without a figure: ${failed.join(", ")}`);
}
