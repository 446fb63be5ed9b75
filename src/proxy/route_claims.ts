/**
 * Who serves each route when services claim it, kept per host and per TCP port:
 * - `HostIndex`: host ("" = any host) → path prefix → the services claiming it. The explicit
 *   route beats the edge default (`SERVICE.<edgeDomain>`), then the first service name in sort
 *   order wins; two explicit claims make a conflict line. Claims change one at a time; `flush()`
 *   then re-derives each changed host's lookup array (its routes, longest prefix first) and
 *   swaps it in with one assignment.
 * - `TcpIndex`: TCP port (or, labelled "UDP", UDP port) → the services asking for it; the first
 *   by name keeps it, the others
 *   are clashes.
 *
 * @module
 */
import type { RoutedService } from "./routed_service.ts";

/** One route of a host as a lookup tries it. */
export interface PathRoute {
  /** The host it serves, normalized ("" for any host). */
  readonly host: string;
  readonly prefix: string;
  /** `host` and `prefix` as logs name the route (`*` for any host): `app.example.com/api`. */
  readonly name: string;
  readonly svc: RoutedService;
  /** True for the `SERVICE.<edgeDomain>` default, which explicit routes override. */
  readonly edge: boolean;
}

interface Candidate {
  readonly svc: RoutedService;
  readonly edge: boolean;
}

/** Explicit before edge, then by service name: the first candidate serves the route. */
function before(a: Candidate, b: Candidate): boolean {
  if (a.edge !== b.edge) return !a.edge;
  return a.svc.service < b.svc.service;
}

const NO_ROUTES: readonly PathRoute[] = [];

/** The HTTP routes of every host, with the services that claim them. */
export class HostIndex {
  /** Lookup arrays of named hosts, longest prefix first; replaced whole on change. */
  readonly byHost = new Map<string, readonly PathRoute[]>();
  /** The path-only routes (any host), longest prefix first. */
  anyHost: readonly PathRoute[] = NO_ROUTES;
  /** Named hosts whose routes include one served by a service asking for ACME. */
  readonly acmeHosts = new Set<string>();
  /** Raised whenever the set of named hosts or `acmeHosts` changes. */
  hostsVersion = 0;
  readonly #claims = new Map<string, Map<string, Candidate[]>>();
  readonly #conflicts = new Map<string, readonly string[]>();
  readonly #dirty = new Set<string>();

  /** Service `svc` claims `host` + `prefix` (once per service and kind). */
  add(host: string, prefix: string, svc: RoutedService, edge: boolean): void {
    let byPrefix = this.#claims.get(host);
    if (byPrefix === undefined) this.#claims.set(host, byPrefix = new Map());
    let list = byPrefix.get(prefix);
    if (list === undefined) byPrefix.set(prefix, list = []);
    const c: Candidate = { svc, edge };
    let at = 0;
    while (at < list.length && before(list[at]!, c)) at++;
    list.splice(at, 0, c);
    this.#dirty.add(host);
  }

  /** Service `svc` no longer claims `host` + `prefix`. */
  remove(host: string, prefix: string, svc: RoutedService, edge: boolean): void {
    const byPrefix = this.#claims.get(host);
    const list = byPrefix?.get(prefix);
    if (byPrefix === undefined || list === undefined) return;
    const at = list.findIndex((c) => c.svc === svc && c.edge === edge);
    if (at < 0) return;
    list.splice(at, 1);
    if (list.length === 0) byPrefix.delete(prefix);
    if (byPrefix.size === 0) this.#claims.delete(host);
    this.#dirty.add(host);
  }

  /** Derive `host`'s routes again at the next flush (a service's ACME wish changed). */
  touch(host: string): void {
    if (this.#claims.has(host)) this.#dirty.add(host);
  }

  /** Swaps in the lookup arrays of the hosts changed since the last flush; new conflicts out. */
  flush(newConflicts: string[]): void {
    for (const host of this.#dirty) this.#derive(host, newConflicts);
    this.#dirty.clear();
  }

  #derive(host: string, newConflicts: string[]): void {
    const byPrefix = this.#claims.get(host);
    const routes: PathRoute[] = [];
    const lines: string[] = [];
    let acme = false;
    for (const [prefix, list] of byPrefix ?? []) {
      const winner = list[0]!;
      routes.push({
        host,
        prefix,
        name: `${host || "*"}${prefix}`,
        svc: winner.svc,
        edge: winner.edge,
      });
      if (winner.svc.acme) acme = true;
      if (list.length > 1 && !list[1]!.edge) {
        const names = list.filter((c) => !c.edge).map((c) => c.svc.service);
        lines.push(
          `route ${host || "*"}${prefix}: claimed by services ${names.join(", ")}; ` +
            `${winner.svc.service} serves it`,
        );
      }
    }
    routes.sort((a, b) =>
      b.prefix.length - a.prefix.length || (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0)
    );
    lines.sort();
    const old = this.#conflicts.get(host) ?? [];
    for (const l of lines) if (!old.includes(l)) newConflicts.push(l);
    if (lines.length > 0) this.#conflicts.set(host, lines);
    else this.#conflicts.delete(host);
    if (host === "") {
      this.anyHost = routes.length > 0 ? routes : NO_ROUTES;
      return;
    }
    const had = this.byHost.has(host);
    // Invariant: one assignment per host; a lookup sees the old array or the new one.
    if (routes.length > 0) this.byHost.set(host, routes);
    else this.byHost.delete(host);
    const hadAcme = this.acmeHosts.has(host);
    if (acme) this.acmeHosts.add(host);
    else this.acmeHosts.delete(host);
    if (had !== routes.length > 0 || hadAcme !== acme) this.hostsVersion++;
  }

  /** Every route conflict line, by host. */
  conflicts(): string[] {
    const hosts = [...this.#conflicts.keys()].sort();
    return hosts.flatMap((h) => this.#conflicts.get(h)!);
  }
}

/** A TCP route port left to another service (two services claimed it). */
export interface TcpClash {
  readonly port: number;
  readonly service: string;
  /** The service that keeps the port. */
  readonly keptBy: string;
}

/** The TCP route ports and the services asking for each. */
export class TcpIndex {
  /** "TCP" or "UDP", for the conflict lines. */
  readonly #proto: string;

  constructor(proto: "TCP" | "UDP" = "TCP") {
    this.#proto = proto;
  }

  /** Port → the service that listens there. */
  readonly owners = new Map<number, RoutedService>();
  /** Ports claimed by more than one service: the services that did not get them. */
  clashes: readonly TcpClash[] = [];
  readonly #claims = new Map<number, RoutedService[]>();
  readonly #dirty = new Set<number>();
  /** Ports with more than one claim. */
  readonly #clashing = new Set<number>();

  add(port: number, svc: RoutedService): void {
    let list = this.#claims.get(port);
    if (list === undefined) this.#claims.set(port, list = []);
    let at = 0;
    while (at < list.length && list[at]!.service < svc.service) at++;
    list.splice(at, 0, svc);
    this.#dirty.add(port);
  }

  remove(port: number, svc: RoutedService): void {
    const list = this.#claims.get(port);
    const at = list?.indexOf(svc) ?? -1;
    if (list === undefined || at < 0) return;
    list.splice(at, 1);
    if (list.length === 0) this.#claims.delete(port);
    this.#dirty.add(port);
  }

  /**
   * Settles the ports changed since the last flush: adds to `changedPorts` each whose owner
   * changed, to `newConflicts` each new clash line.
   */
  flush(changedPorts: Set<number>, newConflicts: string[]): void {
    if (this.#dirty.size === 0) return;
    const oldLines = new Set(this.conflicts());
    let clashesChanged = false;
    for (const port of this.#dirty) {
      const list = this.#claims.get(port);
      const owner = list?.[0];
      if (this.owners.get(port) !== owner) {
        if (owner === undefined) this.owners.delete(port);
        else this.owners.set(port, owner);
        changedPorts.add(port);
      }
      const clashing = list !== undefined && list.length > 1;
      if (clashing || this.#clashing.has(port)) clashesChanged = true;
      if (clashing) this.#clashing.add(port);
      else this.#clashing.delete(port);
    }
    this.#dirty.clear();
    if (!clashesChanged) return;
    const clashes: TcpClash[] = [];
    for (const port of [...this.#clashing].sort((a, b) => a - b)) {
      const [owner, ...others] = this.#claims.get(port)!;
      for (const o of others) {
        clashes.push({ port, service: o.service, keptBy: owner!.service });
      }
    }
    this.clashes = clashes;
    for (const l of this.conflicts()) if (!oldLines.has(l)) newConflicts.push(l);
  }

  /** One line per clash, by port. */
  conflicts(): string[] {
    return this.clashes.map((c) =>
      `${this.#proto} port ${c.port}: claimed by services ${c.keptBy} and ${c.service}; ${c.keptBy} keeps it`
    );
  }
}

/**
 * The first of `routes` (longest prefix first) whose prefix matches `url` on a path-segment
 * boundary (`/api` matches `/api`, `/api/x`, `/api?q` and `/api;p` (path parameters, which
 * servlet containers strip), not `/apix`), or null. `url` is normalized (request_path.ts).
 */
export function matchPrefix(routes: readonly PathRoute[], url: string): PathRoute | null {
  for (let i = 0; i < routes.length; i++) {
    const r = routes[i]!;
    const p = r.prefix;
    if (!url.startsWith(p)) continue;
    if (url.length === p.length || p.charCodeAt(p.length - 1) === 47) return r; // "/"
    const c = url.charCodeAt(p.length);
    if (c === 47 || c === 63 || c === 59) return r; // "/", "?" or ";"
  }
  return null;
}
