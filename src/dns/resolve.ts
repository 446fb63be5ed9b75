/**
 * The authoritative half of the request path, as CoreDNS arranges it: an ordered chain of
 * handlers, each of which answers a name or passes it on. `ZONE_CHAIN` is the order, in one place;
 * a name no handler claims (outside the domain and the edge domain) goes to the forwarder.
 *
 *   apex      DOMAIN                       SOA, NS (alive nodes, with glue)
 *   service   [TAG.]NAME.service.DOMAIN    A/AAAA (deduplicated, shuffled), SRV (+ addresses)
 *             _NAME._tcp.service.DOMAIN    RFC 2782 SRV, no tag filter
 *             _NAME._TAG.service.DOMAIN    RFC 2782 SRV filtered by TAG
 *   node      NODE.node.DOMAIN             A/AAAA of the member
 *   addr      HEX.addr.DOMAIN              the address spelled in hex (SRV targets)
 *   edge      [*.]EDGE-DOMAIN              A/AAAA of alive proxy members, TTL 0, rotated
 *   authority anything else in DOMAIN      NXDOMAIN + SOA (minimum = NEGATIVE_TTL_S)
 *
 * Pure: a Zone and a question in, a Reply (plain records) out.
 *
 * @module
 */
import { CLASS_ANY, CLASS_IN, ipBytes, RCODE, type Rr, TYPE } from "./wire.ts";
import type { Zone, ZoneInstance } from "./zone.ts";

/** SOA minimum and TTL: how long resolvers may cache NXDOMAIN/NODATA (RFC 2308 §5). */
export const NEGATIVE_TTL_S = 0;
/** SOA timers for secondaries (berth has none; values from RFC 1912 §2.2). */
export const SOA_REFRESH_S = 3600;
export const SOA_RETRY_S = 600;
export const SOA_EXPIRE_S = 86_400;
/** Most NS records at the apex. */
export const NS_RECORDS_MAX = 8;
/** SRV priority of every instance (all equal: weight decides). */
export const SRV_PRIORITY = 1;

/** A question as handlers see it: lower-cased name with trailing dot, numeric type. */
export interface Lookup {
  name: string;
  type: number;
}

/** An answer in plain records; `order` says how answers are arranged for each query. */
export interface Reply {
  rcode: number;
  authoritative: boolean;
  answers: Rr[];
  authority: Rr[];
  additionals: Rr[];
  /** shuffle: random per query; rotate: round robin start per query; fixed: as is. */
  order: "shuffle" | "rotate" | "fixed";
}

/** One link of the chain: a Reply when the name is this handler's, null to pass it on. */
export type Handler = (q: Lookup, zone: Zone) => Reply | null;

/** The chain, in order. The forwarder follows it (see server.ts). */
export const ZONE_CHAIN: readonly { name: string; handler: Handler }[] = [
  { name: "apex", handler: apex },
  { name: "service", handler: service },
  { name: "node", handler: node },
  { name: "addr", handler: addr },
  { name: "edge", handler: edge },
  { name: "authority", handler: authority },
];

/** Runs the chain; null when the name is not authoritative here (forward it). */
export function resolve(zone: Zone, q: Lookup, klass: number = CLASS_IN): Reply | null {
  if (klass !== CLASS_IN && klass !== CLASS_ANY) return null;
  for (const link of ZONE_CHAIN) {
    const reply = link.handler(q, zone);
    if (reply !== null) return reply;
  }
  return null;
}

// ---- the handlers ----

function apex(q: Lookup, zone: Zone): Reply | null {
  const origin = q.name === zone.domain
    ? zone.domain
    : q.name === zone.edgeDomain
    ? zone.edgeDomain
    : null;
  if (origin === null) return null;
  if (origin === zone.edgeDomain && origin !== zone.domain && isAddressType(q.type)) {
    return null; // the edge apex resolves like any name under it
  }
  const answers: Rr[] = [];
  const additionals: Rr[] = [];
  if (q.type === TYPE.SOA || q.type === TYPE.ANY) answers.push(soa(zone, origin));
  if (q.type === TYPE.NS || q.type === TYPE.ANY) {
    for (const ns of zone.nameServers.slice(0, NS_RECORDS_MAX)) {
      const target = `${ns}.node.${zone.domain}`;
      answers.push({ name: origin, type: "NS", ttl: zone.ttl, data: target });
      const n = zone.nodes.get(ns);
      if (n !== undefined) {
        additionals.push(...addressRecords(target, [n.address], zone.ttl, TYPE.ANY));
      }
    }
  }
  return answers.length === 0 ? nodata(zone, origin) : ok(answers, [], additionals, "fixed");
}

function service(q: Lookup, zone: Zone): Reply | null {
  if (!q.name.endsWith(zone.serviceSuffix)) return null;
  const labels = q.name.slice(0, -zone.serviceSuffix.length).split(".");
  let name: string;
  let tag: string | null = null;
  const [l0, l1] = labels as [string, string | undefined];
  if (labels.length === 1) {
    // `_x.service.DOMAIN` is an empty non-terminal above `_NAME._x.service.DOMAIN`.
    if (l0.startsWith("_")) return nodata(zone, zone.domain);
    name = l0;
  } else if (labels.length === 2 && l1 !== undefined) {
    if (l0.startsWith("_") && l1.startsWith("_")) {
      name = l0.slice(1);
      tag = l1 === "_tcp" ? null : l1.slice(1); // Consul's rule: _tcp means any instance
    } else {
      tag = l0;
      name = l1;
    }
  } else {
    return nxdomain(zone, zone.domain);
  }
  const instances = zone.instances(name, tag);
  if (instances.length === 0) return nxdomain(zone, zone.domain);
  if (q.type === TYPE.SRV) return srv(q.name, instances, zone);
  const answers = addressRecords(q.name, instances.map((i) => i.address), zone.ttl, q.type);
  return answers.length === 0 ? nodata(zone, zone.domain) : ok(answers, [], [], "shuffle");
}

function node(q: Lookup, zone: Zone): Reply | null {
  if (!q.name.endsWith(zone.nodeSuffix)) return null;
  const n = zone.nodes.get(q.name.slice(0, -zone.nodeSuffix.length));
  if (n === undefined) return nxdomain(zone, zone.domain);
  const answers = addressRecords(q.name, [n.address], zone.ttl, q.type);
  return answers.length === 0 ? nodata(zone, zone.domain) : ok(answers, [], [], "fixed");
}

function addr(q: Lookup, zone: Zone): Reply | null {
  if (!q.name.endsWith(zone.addrSuffix)) return null;
  const ip = hexToIp(q.name.slice(0, -zone.addrSuffix.length));
  if (ip === null) return nxdomain(zone, zone.domain);
  const answers = addressRecords(q.name, [ip], zone.ttl, q.type);
  return answers.length === 0 ? nodata(zone, zone.domain) : ok(answers, [], [], "fixed");
}

function edge(q: Lookup, zone: Zone): Reply | null {
  const origin = zone.edgeDomain;
  if (origin === null || zone.edgeSuffix === null) return null;
  if (q.name !== origin && !q.name.endsWith(zone.edgeSuffix)) return null;
  const answers = addressRecords(q.name, zone.edgeAddresses, 0, q.type);
  return answers.length === 0 ? nodata(zone, origin) : ok(answers, [], [], "rotate");
}

function authority(q: Lookup, zone: Zone): Reply | null {
  if (!q.name.endsWith(`.${zone.domain}`)) return null;
  const rel = q.name.slice(0, -zone.domain.length - 1);
  // The folders of the name space exist (empty non-terminals): NODATA, not NXDOMAIN (RFC 8020).
  if (rel === "service" || rel === "node" || rel === "addr") return nodata(zone, zone.domain);
  return nxdomain(zone, zone.domain);
}

// ---- building blocks ----

function ok(answers: Rr[], authority: Rr[], additionals: Rr[], order: Reply["order"]): Reply {
  return { rcode: RCODE.NOERROR, authoritative: true, answers, authority, additionals, order };
}

/** Negative replies are the same for every name of a zone: one object each, per zone. */
const negatives = new WeakMap<Zone, Map<string, Reply>>();

function negative(zone: Zone, origin: string, rcode: number): Reply {
  let m = negatives.get(zone);
  if (m === undefined) negatives.set(zone, m = new Map());
  const key = `${rcode} ${origin}`;
  let r = m.get(key);
  if (r === undefined) m.set(key, r = { ...ok([], [soa(zone, origin)], [], "fixed"), rcode });
  return r;
}

function nodata(zone: Zone, origin: string): Reply {
  return negative(zone, origin, RCODE.NOERROR);
}

function nxdomain(zone: Zone, origin: string): Reply {
  return negative(zone, origin, RCODE.NXDOMAIN);
}

function soa(zone: Zone, origin: string): Rr {
  const primary = zone.nameServers[0];
  return {
    name: origin,
    type: "SOA",
    ttl: NEGATIVE_TTL_S,
    data: {
      mname: primary === undefined ? `ns.${zone.domain}` : `${primary}.node.${zone.domain}`,
      rname: `hostmaster.${origin}`,
      serial: zone.version >>> 0,
      refresh: SOA_REFRESH_S,
      retry: SOA_RETRY_S,
      expire: SOA_EXPIRE_S,
      minimum: NEGATIVE_TTL_S,
    },
  };
}

function isAddressType(type: number): boolean {
  return type === TYPE.A || type === TYPE.AAAA || type === TYPE.ANY;
}

/** A records for IPv4 and AAAA for IPv6 addresses (ANY: both), each address once. */
function addressRecords(name: string, addresses: readonly string[], ttl: number, type: number) {
  const out: Rr[] = [];
  if (!isAddressType(type)) return out;
  const seen = new Set<string>();
  for (const a of addresses) {
    if (seen.has(a)) continue;
    seen.add(a);
    const bytes = ipBytes(a);
    if (bytes === null) continue; // a hostname address has no A/AAAA of its own
    const rtype = bytes.length === 4 ? "A" : "AAAA";
    if (type === TYPE.ANY || TYPE[rtype] === type) out.push({ name, type: rtype, ttl, data: a });
  }
  return out;
}

function srv(name: string, instances: readonly ZoneInstance[], zone: Zone): Reply {
  const answers: Rr[] = [];
  const additionals: Rr[] = [];
  const seen = new Set<string>();
  for (const i of instances) {
    const hex = ipToHex(i.address);
    const target = hex === null ? fqdn(i.address) : `${hex}.addr.${zone.domain}`;
    const key = `${target} ${i.port}`;
    if (seen.has(key)) continue;
    const first = !seen.has(target);
    seen.add(key);
    seen.add(target);
    answers.push({
      name,
      type: "SRV",
      ttl: zone.ttl,
      data: { priority: SRV_PRIORITY, weight: i.weight, port: i.port, target },
    });
    if (hex !== null && first) {
      additionals.push(...addressRecords(target, [i.address], zone.ttl, TYPE.ANY));
    }
  }
  return ok(answers, [], additionals, "shuffle");
}

function fqdn(host: string): string {
  return host.endsWith(".") ? host.toLowerCase() : `${host.toLowerCase()}.`;
}

/** `10.0.0.1` → `0a000001`; IPv6 → 32 hex digits (Consul's `.addr.` form). */
export function ipToHex(ip: string): string | null {
  const bytes = ipBytes(ip);
  if (bytes === null) return null;
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Inverse of ipToHex; null when the label is not 8 or 32 hex digits. */
export function hexToIp(hex: string): string | null {
  if (!/^([0-9a-f]{8}|[0-9a-f]{32})$/.test(hex)) return null;
  const bytes = hex.match(/../g)!.map((h) => parseInt(h, 16));
  if (bytes.length === 4) return bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(":");
}
