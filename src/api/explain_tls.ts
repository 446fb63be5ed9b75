/**
 * `berth explain https://HOST/…`: the certificate this member's HTTPS listener would serve for
 * HOST (the proxy's own SNI choice, src/proxy/sni_index.ts: exact name, one-label wildcard,
 * else the default, else none and the handshake is refused), and for a `berth.tls=acme` host
 * the state of its ACME order. Pure: the caller reads the store.
 *
 * @module
 */
import { type ServedCert, SniIndex } from "../proxy/sni_index.ts";
import type { AcmeNameState, EdgeCert } from "../store/mod.ts";

/** What HTTPS looks like for one host, one sentence each. */
export function tlsLines(o: {
  host: string | null;
  /** The HTTPS listener's address; null when this member has none. */
  https: string | null;
  certs: readonly EdgeCert[];
  /** The route asks for an ACME certificate (`berth.tls=acme`). */
  acme: boolean;
  acmeState: AcmeNameState | undefined;
  nowMs: number;
}): string[] {
  if (o.https === null) {
    return ["this member serves no HTTPS (--proxy-https is off): the connection is refused"];
  }
  const out: string[] = [];
  const index = new SniIndex(o.certs.map((c): ServedCert => ({ ...c, keyPem: "" })));
  const name = o.host ?? "";
  const own = index.covering(name);
  const cert = own ?? index.lookup(name);
  if (cert === null) {
    out.push(
      `no certificate for ${o.host ?? "a request without a host name"} (none names it, no ` +
        "default): the TLS handshake is refused",
    );
  } else {
    const source = o.certs.find((c) => c.fingerprint === cert.fingerprint)?.source ?? "manual";
    const when = new Date(cert.notAfter).toISOString();
    const left = cert.notAfter - o.nowMs;
    const validity = left <= 0
      ? `expired at ${when}: clients refuse it`
      : `valid until ${when} (${Math.floor(left / 86_400_000)} days left)`;
    out.push(
      own !== null
        ? `certificate ${cert.name} (${source}, for ${
          cert.names.join(", ")
        }) is served, ${validity}`
        : `no certificate names ${name}: the default certificate ${cert.name} (for ` +
          `${
            cert.names.join(", ")
          }) is served, which clients refuse as a name mismatch; ${validity}`,
    );
  }
  if (o.acme) out.push(acmeLine(name, o.acmeState, o.nowMs));
  return out;
}

function acmeLine(name: string, s: AcmeNameState | undefined, nowMs: number): string {
  if (s === undefined) return `ACME (berth.tls=acme): no order for ${name} yet`;
  const parts = [`ACME (berth.tls=acme) for ${name}:`];
  parts.push(s.order === null ? "no order in flight" : `order ${s.order.status}`);
  if (s.failures > 0) {
    parts.push(`${s.failures} failure${s.failures === 1 ? "" : "s"} in a row`);
  }
  if (s.lastError !== "") parts.push(`last error: ${s.lastError.slice(0, 300)}`);
  if (s.nextAttemptMs > nowMs) {
    parts.push(`next try in ${Math.ceil((s.nextAttemptMs - nowMs) / 1000)} s`);
  }
  return parts.join("; ").replace(":;", ":");
}
