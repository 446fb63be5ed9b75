/**
 * `berth.http.allow=CIDR,…` (README "Middlewares"): only clients whose address is in one of the
 * networks are served; others get 403. The client is the connection's peer (or the PROXY
 * protocol's source on a listener that trusts it); an IPv4 client on a dual-stack socket
 * (`::ffff:10.1.2.3`) is matched as IPv4. X-Forwarded-For is never read: a client writes what
 * it likes there.
 *
 * @module
 */
import { ALLOW_KEY, parseAllow } from "../../store/route_keys_http.ts";
import { CidrList } from "../../lib/cidr.ts";
import type { MiddlewarePart } from "./pipeline.ts";
import { misconfigured } from "./misconfigured.ts";

export const ALLOW: MiddlewarePart = {
  name: "allow",
  build(settings) {
    const value = settings.get(ALLOW_KEY);
    if (value === undefined) return null;
    let list: CidrList;
    try {
      list = new CidrList(parseAllow(value));
    } catch {
      return misconfigured("allow", ALLOW_KEY);
    }
    return {
      name: "allow",
      request: (s) =>
        list.has(s.client) ? null : {
          status: 403,
          text: `forbidden: client ${s.client} is not allowed`,
        },
    };
  },
};
