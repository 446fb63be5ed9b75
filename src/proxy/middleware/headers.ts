/**
 * Request and response headers (README "Middlewares"):
 * - `berth.http.request-header.NAME=VALUE` sets NAME for the instance (any the client sent is
 *   replaced); `berth.http.request-headers.remove=N1,N2` removes headers before forwarding,
 *   X-Forwarded-* included (after strip-prefix and rewrite, whose headers it can remove too).
 * - `berth.http.response-header.NAME=VALUE` and `berth.http.response-headers.remove=N1,N2` do
 *   the same on every response of the route: the instance's and the proxy's own errors after
 *   forwarding (502, 504) alike.
 * Framing and hop-by-hop headers and Host are refused when the key is read
 * (route_keys_http.ts `headerName`). Removal runs first, then the set headers are added.
 *
 * @module
 */
import {
  REQUEST_HEADER_PREFIX,
  REQUEST_HEADERS_REMOVE_KEY,
  RESPONSE_HEADER_PREFIX,
  RESPONSE_HEADERS_REMOVE_KEY,
} from "../../store/route_keys_http.ts";
import { headerName, headerValue, parseHeaderList } from "../../store/route_keys_http.ts";
import type { DispatchSink } from "../conn_info.ts";
import type { RouteSettings } from "../route_settings.ts";
import { type MiddlewarePart, SinkWrapper } from "./pipeline.ts";
import { dropHeaders } from "./header_list.ts";

/** What a route's header keys of one direction say: names to drop, then headers to add. */
export interface HeaderEdit {
  /** Lower-case names removed (the removed ones and the set ones). */
  readonly drop: ReadonlySet<string>;
  /** [name, value, …] appended, lower-case names. */
  readonly add: readonly string[];
}

/** The edit of one direction's keys; null when there is none. Bad entries are left out. */
export function headerEdit(
  settings: RouteSettings,
  prefix: string,
  removeKey: string,
): HeaderEdit | null {
  const set = new Map<string, string>();
  for (const [key, value] of settings.family(prefix)) {
    try {
      set.set(headerName(key.slice(prefix.length)), headerValue(value));
    } catch {
      // checked when stored; a value from before the check is skipped like a bad label
    }
  }
  const drop = new Set<string>(set.keys());
  const remove = settings.get(removeKey);
  if (remove !== undefined) {
    try {
      for (const name of parseHeaderList(remove)) drop.add(name);
    } catch {
      // as above
    }
  }
  if (drop.size === 0) return null;
  return { drop, add: [...set].flat() };
}

/** `headers` with `edit` applied. */
export function applyEdit(headers: readonly string[], edit: HeaderEdit): string[] {
  const out = dropHeaders(headers, edit.drop);
  for (const h of edit.add) out.push(h);
  return out;
}

/** A sink whose response heads get `edit`. */
class EditedSink extends SinkWrapper {
  readonly #edit: HeaderEdit;

  constructor(inner: DispatchSink, edit: HeaderEdit) {
    super(inner);
    this.#edit = edit;
  }

  override writeHead(status: number, reason: string, headers: readonly string[]): void {
    this.inner.writeHead(status, reason, applyEdit(headers, this.#edit));
  }
}

export const REQUEST_HEADERS: MiddlewarePart = {
  name: "request-headers",
  build(settings) {
    const edit = headerEdit(settings, REQUEST_HEADER_PREFIX, REQUEST_HEADERS_REMOVE_KEY);
    if (edit === null) return null;
    return {
      name: "request-headers",
      request(s) {
        s.headers = applyEdit(s.headers, edit);
        return null;
      },
    };
  },
};

export const RESPONSE_HEADERS: MiddlewarePart = {
  name: "response-headers",
  build(settings) {
    const edit = headerEdit(settings, RESPONSE_HEADER_PREFIX, RESPONSE_HEADERS_REMOVE_KEY);
    if (edit === null) return null;
    return { name: "response-headers", response: (_s, res) => new EditedSink(res, edit) };
  },
};
