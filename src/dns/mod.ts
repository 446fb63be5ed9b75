/**
 * # dns — berth's DNS server
 *
 * Answers service, node and edge names from an in-memory zone view of the local store replica
 * (kept current by the change feed's deltas, zone_view.ts; never touching SQLite on the answer
 * path; encoded answers cached until what they name changes), and forwards every other name to
 * the configured recursors through a bounded, TTL-respecting cache. UDP and TCP on one address.
 *
 * | name                                   | answers                                            |
 * |----------------------------------------|----------------------------------------------------|
 * | `NAME.service.[DC.]DOMAIN`             | A/AAAA of passing instances, shuffled; SRV          |
 * | `TAG.NAME.service.[DC.]DOMAIN`         | same, filtered by tag (`B.A.NAME`: both tags)      |
 * | `_NAME._tcp.service.[DC.]DOMAIN`       | RFC 2782 SRV (no tag filter)                       |
 * | `_NAME._TAG.service.[DC.]DOMAIN`       | RFC 2782 SRV filtered by TAG                       |
 * | `NODE.node.[DC.]DOMAIN`                | A/AAAA of the member, node meta as TXT             |
 * | `HEX.addr.[DC.]DOMAIN`                 | the address in hex (SRV targets: `0a000005.addr.`) |
 * | `…in-addr.arpa`, `…ip6.arpa` PTR       | the node, else the services, at that address       |
 * | `DOMAIN`                               | SOA, NS                                            |
 * | anything under the edge domain         | A/AAAA of alive proxy members, TTL 0, rotated      |
 * | other names in DOMAIN, another DC      | NXDOMAIN + SOA (minimum = NEGATIVE_TTL_S)          |
 * | names outside, unknown addresses       | forwarded to recursors (cached), else REFUSED      |
 *
 * SRV targets are `<hex address>.addr.DOMAIN` with the address in the additional section, so
 * instances on one node with different addresses stay distinct (Consul's scheme). UDP answers
 * larger than 512 bytes or the client's EDNS0 size (capped at EDNS_UDP_BYTES_MAX) carry the
 * answers that fit and set TC. Malformed queries get FORMERR (or are dropped when even the header
 * is unreadable), other opcodes NOTIMP; all zone answers are authoritative (AA).
 *
 * With `--dns-workers N` (N >= 2) a DnsWorkerPool (workers/pool.ts) answers instead: N threads
 * with zone replicas on the same port, the main thread keeping the zone view and the forwarder.
 *
 * Options (DnsOptions): `store`, `listen` (port 0: any free port, same for UDP and TCP),
 * `domain`, `edgeDomain`, `ttl`, `recursors`, optional `datacenter` (`dc1`), `serviceTtl` (per
 * service, `*` for the rest), `visible` (`--dns-acl`: only the services and nodes the anonymous
 * token may read; edge names stay open), `random` and `forward` tuning.
 *
 * @example
 * ```ts
 * const dns = new DnsServer({
 *   store, listen: { host: "127.0.0.1", port: 8600 }, domain: "berth.",
 *   edgeDomain: "edge.example.", ttl: 0, recursors: [{ host: "1.1.1.1", port: 53 }],
 * });
 * await dns.start();
 * // dig @127.0.0.1 -p 8600 web.service.berth SRV
 * await dns.close();
 * ```
 *
 * @module
 */
export {
  BIND_ATTEMPTS_MAX,
  type DnsOptions,
  DnsServer,
  TCP_CONNECTIONS_MAX,
  TCP_IDLE_TIMEOUT_MS,
  TCP_PIPELINE_MAX,
  TCP_QUERY_BYTES_MAX,
  TCP_WRITE_BYTES_MAX,
} from "./server.ts";
export { DNS_WORKERS_MAX, DnsWorkerPool, type DnsWorkerPoolOptions } from "./workers/pool.ts";
export { ANSWER_CACHE_BYTES_MAX, ANSWER_CACHE_ENTRIES_MAX } from "./answer_cache.ts";
export { type ReverseNames, Zone, type ZoneFilter, type ZoneOptions } from "./zone.ts";
export { type ZoneDelta, type ZoneInstanceRow, type ZoneNodeRow } from "./zone_delta.ts";
export { REBUILD_SLICE, ZoneView, type ZoneViewOptions } from "./zone_view.ts";
export {
  type Answer,
  type Handler,
  hexToIp,
  ipToHex,
  type Lookup,
  NEGATIVE_TTL_S,
  type Reply,
  resolve,
  resolveAnswer,
  reverseKey,
  ZONE_CHAIN,
} from "./resolve.ts";
export {
  FORWARD_INFLIGHT_MAX,
  FORWARD_TIMEOUT_MS,
  Forwarder,
  type ForwarderOptions,
} from "./forwarder.ts";
export {
  RESPONSE_CACHE_BYTES_MAX,
  RESPONSE_CACHE_ENTRIES_MAX,
  RESPONSE_CACHE_TTL_MAX_S,
} from "./response_cache.ts";
export { EDNS_UDP_BYTES_MAX, TXT_STRING_BYTES_MAX, UDP_PLAIN_BYTES_MAX } from "./wire.ts";
