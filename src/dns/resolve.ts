/**
 * The authoritative half of the request path, as CoreDNS arranges it: an ordered chain of
 * handlers, each of which answers a name or passes it on. `ZONE_CHAIN` is the order, in one place;
 * a name no handler claims (outside the domain and the edge domain, or an address berth does not
 * know) goes to the forwarder. `[DC.]` is the configured datacenter, optional as in Consul; any
 * other datacenter is NXDOMAIN.
 *
 *   reverse   D.C.B.A.in-addr.arpa, …ip6.arpa  PTR: NODE.node.DC.DOMAIN of nodes with that
 *                                              address, else NAME.service.DC.DOMAIN of
 *                                              instances there (Consul's order); else forwarded
 *   apex      DOMAIN                           SOA, NS (alive nodes, with glue)
 *   service   [TAG.]…NAME.service.[DC.]DOMAIN  A/AAAA (deduplicated, shuffled), SRV (+ addresses);
 *                                              several tags: instances having all of them
 *             _NAME._tcp.service.[DC.]DOMAIN   RFC 2782 SRV, no tag filter
 *             _NAME._TAG.service.[DC.]DOMAIN   RFC 2782 SRV filtered by TAG
 *   node      NODE.node.[DC.]DOMAIN            A/AAAA of the member, node meta as TXT
 *                                              (`key=value`) in additionals; TXT: in answers
 *   addr      HEX.addr.[DC.]DOMAIN             the address spelled in hex (SRV targets)
 *   edge      [*.]EDGE-DOMAIN                  A/AAAA of alive proxy members, TTL 0, rotated
 *   authority anything else in DOMAIN          NXDOMAIN + SOA (minimum = NEGATIVE_TTL_S)
 *
 * Service answers carry the service's TTL (`Zone.serviceTtl`), the others the zone's.
 * Pure: a Zone and a question in, an Answer out: a Reply (plain records) and the dependency keys
 * it was built from (zone.ts), which the answer cache drops it by.
 *
 * @module
 */
import { CLASS_ANY, CLASS_IN, ipBytes, RCODE, type Rr, txtStrings, TYPE } from "./wire.ts";
import { hexToIp, ipToHex } from "./ip_hex.ts";
import { addressDep, nodeDep, serviceDep, type Zone, ZONE_DEP, type ZoneInstance } from "./zone.ts";

export { hexToIp, ipToHex };

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

/**
 * A Reply and what it was built from: the zone's dependency keys (zone.ts), so a cache drops it
 * when one of them changes (answer_cache.ts). Every answer carrying the SOA depends on ZONE_DEP.
 */
export interface Answer {
  reply: Reply;
  depends: readonly string[];
}

/** One link of the chain: an Answer when the name is this handler's, null to pass it on. */
export type Handler = (q: Lookup, zone: Zone) => Answer | null;

/** The chain, in order. The forwarder follows it (see server.ts). */
export const ZONE_CHAIN: readonly { name: string; handler: Handler }[] = [
  { name: "reverse", handler: reverse },
  { name: "apex", handler: apex },
  { name: "service", handler: service },
  { name: "node", handler: node },
  { name: "addr", handler: addr },
  { name: "edge", handler: edge },
  { name: "authority", handler: authority },
];

/** Runs the chain; null when the name is not authoritative here (forward it). */
export function resolveAnswer(zone: Zone, q: Lookup, klass: number = CLASS_IN): Answer | null {
  if (klass !== CLASS_IN && klass !== CLASS_ANY) return null;
  for (const link of ZONE_CHAIN) {
    const answer = link.handler(q, zone);
    if (answer !== null) return answer;
  }
  return null;
}

/** resolveAnswer's Reply. */
export function resolve(zone: Zone, q: Lookup, klass: number = CLASS_IN): Reply | null {
  return resolveAnswer(zone, q, klass)?.reply ?? null;
}

// ---- the handlers ----

function apex(q: Lookup, zone: Zone): Answer | null {
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
  const reply = answers.length === 0 ? nodata(zone, origin) : ok(answers, [], additionals, "fixed");
  return { reply, depends: ZONE_ONLY };
}

/** The part of `name` before one of `suffixes` (tried in order), or null. */
function under(name: string, suffixes: readonly string[]): string | null {
  for (const s of suffixes) if (name.endsWith(s)) return name.slice(0, -s.length);
  return null;
}

function service(q: Lookup, zone: Zone): Answer | null {
  const rel = under(q.name, zone.serviceSuffixes);
  if (rel === null) return null;
  const labels = rel.split(".");
  let name: string;
  let tags: string[] = [];
  const [l0, l1] = labels as [string, string | undefined];
  if (labels.length === 1) {
    // `_x.service.DOMAIN` is an empty non-terminal above `_NAME._x.service.DOMAIN`.
    if (l0.startsWith("_")) return { reply: nodata(zone, zone.domain), depends: ZONE_ONLY };
    name = l0;
  } else if (labels.length === 2 && l0.startsWith("_") && l1?.startsWith("_")) {
    name = l0.slice(1);
    if (l1 !== "_tcp") tags = [l1.slice(1)]; // Consul's rule: _tcp means any instance
  } else {
    name = labels[labels.length - 1]!;
    tags = labels.slice(0, -1);
  }
  const dep = serviceDep(name);
  const instances = zone.instances(name, tags);
  if (instances.length === 0) return negative(nxdomain(zone, zone.domain), dep);
  const ttl = zone.serviceTtl(name);
  if (q.type === TYPE.SRV) return { reply: srv(q.name, instances, { zone, ttl }), depends: [dep] };
  const answers = addressRecords(q.name, instances.map((i) => i.address), ttl, q.type);
  return answers.length === 0
    ? negative(nodata(zone, zone.domain), dep)
    : { reply: ok(answers, [], [], "shuffle"), depends: [dep] };
}

function node(q: Lookup, zone: Zone): Answer | null {
  const rel = under(q.name, zone.nodeSuffixes);
  if (rel === null) return null;
  const dep = nodeDep(rel);
  const n = zone.nodes.get(rel);
  if (n === undefined) return negative(nxdomain(zone, zone.domain), dep);
  // Consul's node lookup: addresses, and the node's meta as TXT (answers for TXT and ANY).
  const addresses = addressRecords(q.name, [n.address], zone.ttl, q.type);
  const meta = q.type === TYPE.TXT || q.type === TYPE.ANY || addresses.length > 0
    ? metaRecords(q.name, n.meta, zone.ttl)
    : [];
  if (q.type === TYPE.TXT || q.type === TYPE.ANY) addresses.push(...meta);
  if (addresses.length === 0) return negative(nodata(zone, zone.domain), dep);
  const reply = q.type === TYPE.TXT || q.type === TYPE.ANY
    ? ok(addresses, [], [], "fixed")
    : ok(addresses, [], meta, "fixed");
  return { reply, depends: [dep] };
}

function addr(q: Lookup, zone: Zone): Answer | null {
  const rel = under(q.name, zone.addrSuffixes);
  if (rel === null) return null;
  const ip = hexToIp(rel);
  if (ip === null) return { reply: nxdomain(zone, zone.domain), depends: ZONE_ONLY };
  const answers = addressRecords(q.name, [ip], zone.ttl, q.type);
  // The address is spelled in the name: the records depend on nothing in the zone.
  return answers.length === 0
    ? { reply: nodata(zone, zone.domain), depends: ZONE_ONLY }
    : { reply: ok(answers, [], [], "fixed"), depends: [] };
}

/**
 * PTR for addresses in the zone (Consul's handlePtr: the nodes with that address, else the
 * services with an instance there); null for other reverse names and other types, so the
 * forwarder answers what berth does not know.
 */
function reverse(q: Lookup, zone: Zone): Answer | null {
  if (q.type !== TYPE.PTR && q.type !== TYPE.ANY) return null;
  const key = reverseKey(q.name);
  if (key === null) return null;
  const address = hexToIp(key)!;
  const r = zone.reverseNames(address);
  if (r === undefined) return null;
  const dc = `${zone.datacenter}.${zone.domain}`;
  const targets = r.nodes.length > 0
    ? r.nodes.map((n) => `${n}.node.${dc}`)
    : r.services.map((s) => `${s}.service.${dc}`);
  const answers: Rr[] = targets.map((data) => ({ name: q.name, type: "PTR", ttl: zone.ttl, data }));
  return { reply: ok(answers, [], [], "fixed"), depends: [addressDep(address)] };
}

/** `4.3.2.1.in-addr.arpa.` → `01020304`; 32 nibbles under `ip6.arpa.` → 32 hex digits; or null. */
export function reverseKey(name: string): string | null {
  if (name.endsWith(".in-addr.arpa.")) {
    const labels = name.slice(0, -".in-addr.arpa.".length).split(".");
    if (labels.length !== 4) return null;
    let out = "";
    for (let i = 3; i >= 0; i--) {
      const l = labels[i]!;
      if (!/^(0|[1-9]\d{0,2})$/.test(l) || Number(l) > 255) return null;
      out += Number(l).toString(16).padStart(2, "0");
    }
    return out;
  }
  if (name.endsWith(".ip6.arpa.")) {
    const rel = name.slice(0, -".ip6.arpa.".length);
    if (!/^([0-9a-f]\.){31}[0-9a-f]$/.test(rel)) return null;
    return rel.split(".").reverse().join("");
  }
  return null;
}

function edge(q: Lookup, zone: Zone): Answer | null {
  const origin = zone.edgeDomain;
  if (origin === null || zone.edgeSuffix === null) return null;
  if (q.name !== origin && !q.name.endsWith(zone.edgeSuffix)) return null;
  const answers = addressRecords(q.name, zone.edgeAddresses, 0, q.type);
  const reply = answers.length === 0 ? nodata(zone, origin) : ok(answers, [], [], "rotate");
  return { reply, depends: ZONE_ONLY };
}

/** The folders of the name space, below the domain: they exist with no records of their own. */
const FOLDERS = ["service", "node", "addr"];

function authority(q: Lookup, zone: Zone): Answer | null {
  if (!q.name.endsWith(`.${zone.domain}`)) return null;
  const rel = q.name.slice(0, -zone.domain.length - 1);
  // Empty non-terminals (`service`, `dc1`, `service.dc1`): NODATA, not NXDOMAIN (RFC 8020).
  const dc = zone.datacenter;
  if (rel === dc || FOLDERS.some((f) => rel === f || rel === `${f}.${dc}`)) {
    return { reply: nodata(zone, zone.domain), depends: ZONE_ONLY };
  }
  return { reply: nxdomain(zone, zone.domain), depends: ZONE_ONLY };
}

// ---- building blocks ----

function ok(answers: Rr[], authority: Rr[], additionals: Rr[], order: Reply["order"]): Reply {
  return { rcode: RCODE.NOERROR, authoritative: true, answers, authority, additionals, order };
}

const ZONE_ONLY: readonly string[] = [ZONE_DEP];

/** A negative reply about a name that exists or not as `dep` says; its SOA is the zone's. */
function negative(reply: Reply, dep: string): Answer {
  return { reply, depends: [dep, ZONE_DEP] };
}

/**
 * Negative replies are the same for every name of a zone version: one object each, per zone
 * and version (its SOA carries the version as serial).
 */
const negatives = new WeakMap<Zone, { version: number; replies: Map<string, Reply> }>();

function negativeReply(zone: Zone, origin: string, rcode: number): Reply {
  let m = negatives.get(zone);
  if (m === undefined || m.version !== zone.version) {
    negatives.set(zone, m = { version: zone.version, replies: new Map() });
  }
  const key = `${rcode} ${origin}`;
  let r = m.replies.get(key);
  if (r === undefined) {
    m.replies.set(key, r = { ...ok([], [soa(zone, origin)], [], "fixed"), rcode });
  }
  return r;
}

function nodata(zone: Zone, origin: string): Reply {
  return negativeReply(zone, origin, RCODE.NOERROR);
}

function nxdomain(zone: Zone, origin: string): Reply {
  return negativeReply(zone, origin, RCODE.NXDOMAIN);
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

/** Node meta as Consul gives it: `key=value` (RFC 1464), the bare value for `rfc1035-` keys. */
function metaRecords(name: string, meta: Readonly<Record<string, string>>, ttl: number): Rr[] {
  return Object.keys(meta).sort().map((key) => {
    const value = meta[key]!;
    const text = key.toLowerCase().startsWith("rfc1035-") ? value : rfc1464(key, value);
    return { name, type: "TXT", ttl, data: txtStrings(text) };
  });
}

/** RFC 1464 §2: a backquote quotes `=`, backquotes and a key's leading and trailing spaces. */
function rfc1464(key: string, value: string): string {
  let k = key.replaceAll("`", "``").replaceAll("=", "`=");
  k = k.replace(/^ +/, (sp) => "` ".repeat(sp.length)).replace(
    / +$/,
    (sp) => "` ".repeat(sp.length),
  );
  return `${k}=${value.replaceAll("`", "``")}`;
}

function srv(
  name: string,
  instances: readonly ZoneInstance[],
  { zone, ttl }: { zone: Zone; ttl: number },
): Reply {
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
      ttl,
      data: { priority: SRV_PRIORITY, weight: i.weight, port: i.port, target },
    });
    if (hex !== null && first) {
      additionals.push(...addressRecords(target, [i.address], ttl, TYPE.ANY));
    }
  }
  return ok(answers, [], additionals, "shuffle");
}

function fqdn(host: string): string {
  return host.endsWith(".") ? host.toLowerCase() : `${host.toLowerCase()}.`;
}
