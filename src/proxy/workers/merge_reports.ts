/**
 * One routes report (`/v1/berth/routes`) from the reports of the proxy workers: the routes of
 * the first (every worker holds the same table), each TCP route listed once with the worst
 * state any worker has for it (failed, then binding, then listening), and every ejection
 * (latest end per instance). Without any report: `fallback` (the main thread's own view).
 *
 * @module
 */
import type { RoutesReport } from "../http_proxy.ts";
import type { TcpRouteInfo } from "../tcp_proxy.ts";
import type { EjectedTarget } from "../upstream_pool.ts";

const WORSE: Record<TcpRouteInfo["state"], number> = { listening: 0, binding: 1, failed: 2 };

export function mergeReports(
  reports: readonly RoutesReport[],
  fallback: RoutesReport,
): RoutesReport {
  const first = reports[0];
  if (first === undefined) return fallback;
  const tcp = new Map<string, TcpRouteInfo>();
  const ejected = new Map<string, EjectedTarget>();
  for (const r of reports) {
    for (const t of r.tcp) {
      const key = `${t.port} ${t.service}`;
      const had = tcp.get(key);
      if (had === undefined || WORSE[t.state] > WORSE[had.state]) tcp.set(key, t);
    }
    for (const e of r.ejected) {
      const key = `${e.instance}|${e.address}|${e.port}`;
      const had = ejected.get(key);
      if (had === undefined || e.untilMs > had.untilMs) ejected.set(key, e);
    }
  }
  return {
    listen: first.listen ?? fallback.listen,
    https: first.https ?? fallback.https,
    http: first.http,
    tcp: [...tcp.values()].sort((a, b) => a.port - b.port || (a.service < b.service ? -1 : 1)),
    conflicts: first.conflicts,
    ejected: [...ejected.values()].sort((a, b) =>
      a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0
    ),
  };
}
