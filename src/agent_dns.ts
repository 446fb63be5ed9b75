/**
 * The DNS part of the composition root (agent.ts): the server on the main thread
 * (`--dns-workers 1`) or on N worker threads sharing its port (README "DNS workers"), and the
 * note on how it runs for the agent's "up" line.
 *
 * @module
 */
import { anonymousNames } from "./agent_dns_acl.ts";
import type { Config } from "./config.ts";
import { type DnsOptions, DnsServer, DnsWorkerPool } from "./dns/mod.ts";
import type { UdpPath } from "./dns/workers/protocol.ts";
import type { Store } from "./store/mod.ts";

export interface StartDnsOptions {
  config: Config;
  store: Store;
  /** Registers what stops a started part (the agent runs them in reverse). */
  onStop: (stop: () => Promise<void> | void) => void;
  /** Registers the DNS drain (SIGTERM): resolves with the queries it cut. */
  onDrain: (drain: (timeoutMs: number) => Promise<number>) => void;
  /** Registers what takes over reloaded settings (SIGHUP). */
  onReload: (reload: (c: Config) => void) => void;
}

/** What the agent keeps of DNS once it started. */
export interface DnsFront {
  /** How it runs, for the "up" line. */
  note: string;
  /** Queries answered by rcode and type (dns_metrics.ts layout), over every thread. */
  queryCounts(): Promise<{ counts: number[]; missing: number[] }>;
}

/** Starts DNS as configured; throws (one line) when it cannot listen. */
export async function startDns(o: StartDnsOptions): Promise<DnsFront> {
  const { config, store } = o;
  const dnsOptions: DnsOptions = {
    store,
    listen: config.dns,
    domain: config.domain,
    datacenter: config.datacenter,
    edgeDomain: config.edgeDomain,
    ttl: config.dnsTtl,
    serviceTtl: config.dnsServiceTtl,
    recursors: config.recursor,
    visible: config.dnsAcl ? () => anonymousNames(store, config.aclDefault) : undefined,
  };
  // --dns-workers 1: the main thread answers; more: worker threads do (README "DNS workers").
  const dns = config.dnsWorkers === 1
    ? new DnsServer(dnsOptions)
    : new DnsWorkerPool({ ...dnsOptions, workers: config.dnsWorkers });
  await dns.start();
  o.onStop(() => dns.close());
  o.onDrain((ms) => dns.drain(ms));
  o.onReload((c) =>
    dns.reconfigure({ ttl: c.dnsTtl, serviceTtl: c.dnsServiceTtl, recursors: c.recursor })
  );
  const note = dns instanceof DnsWorkerPool
    ? dnsNote(dns.udpPaths, dns.udpWhy)
    : dnsNote(["dgram"], null);
  return { note, queryCounts: () => dns.queryCounts() };
}

/** "N thread(s)", for the "up" line. */
export function threadsText(n: number): string {
  return `${n} ${n === 1 ? "thread" : "threads"}`;
}

/**
 * How DNS runs, for the "up" line: its threads and the path UDP takes, given how each thread
 * serves UDP (null: not started) and why FFI was not available (null: it was).
 */
export function dnsNote(paths: readonly (UdpPath | null)[], ffiWhy: string | null): string {
  const count = (p: UdpPath) => paths.filter((x) => x === p).length;
  const ffi = count("ffi");
  const dgram = count("dgram");
  let udp: string;
  if (paths.length === 1 && dgram === 1) udp = "UDP through node:dgram";
  else if (ffi === paths.length) udp = "UDP through FFI";
  else if (ffi === 0 && dgram === 0) udp = "no UDP";
  else {
    const parts: string[] = [];
    if (ffi > 0) parts.push(`FFI in ${ffi}`);
    if (dgram > 0) parts.push(`node:dgram in ${dgram}`);
    udp = `UDP through ${parts.join(", ")}`;
  }
  const why = ffiWhy === null || ffi === paths.length ? "" : `: FFI not available (${ffiWhy})`;
  return `${threadsText(paths.length)}, ${udp}${why}`;
}
