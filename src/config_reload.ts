/**
 * What `SIGHUP` may change in a running agent (README "Shutdown and reload"): the `--config`
 * file is read again into a whole new Config (flags and env still win over it), compared with
 * the one in use, and only the settings in `RELOADABLE` are taken over; every other setting that
 * differs is named as refused and keeps its value until a restart. A pure function of the two
 * configs: the agent applies the plan (src/agent.ts `reload`).
 *
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import type { Config } from "./config.ts";

/**
 * The settings a running agent takes over on SIGHUP, each applied where it is used: DNS TTLs
 * (the zone is rebuilt), the recursors (a new forwarder, its cache empty), the next drain's
 * timeout.
 */
export const RELOADABLE = [
  "dnsTtl",
  "dnsServiceTtl",
  "recursor",
  "drainTimeoutMs",
] as const satisfies readonly (keyof Config)[];

export type ReloadableKey = (typeof RELOADABLE)[number];

export interface ReloadPlan {
  /** The config to run with: the current one with the changed reloadable settings taken over. */
  next: Config;
  /** Flags of the reloadable settings that changed (`--dns-ttl`). */
  applied: string[];
  /** Flags of the other settings that differ and stay as they are (`--dns`, `--data-dir`). */
  refused: string[];
}

/** Config keys whose flag is not their name in kebab case (without a trailing `Ms`). */
const FLAG_OF: Record<string, string> = {
  configFile: "config",
  ca: "ca-cert",
  joinToken: "join-token",
  "acme.caCerts": "acme-ca-cert",
};

/** The flag a Config key (or `acme.email`-style path) is set by: `nodeTimeoutMs` → `--node-timeout`. */
export function flagOf(key: string): string {
  const named = FLAG_OF[key];
  if (named !== undefined) return `--${named}`;
  const kebab = key.replace(/Ms$/, "").replace(/\./g, "-").replace(
    /[A-Z]/g,
    (c) => `-${c.toLowerCase()}`,
  );
  return `--${kebab}`;
}

/** Compares `fresh` (the file read again) with `current` (in use); see the module comment. */
export function planReload(current: Config, fresh: Config): ReloadPlan {
  const reloadable = new Set<string>(RELOADABLE);
  const next = { ...current } as Record<string, unknown>;
  const applied: string[] = [];
  const refused: string[] = [];
  const keys = new Set([...Object.keys(current), ...Object.keys(fresh)]);
  for (const key of keys) {
    const a = (current as unknown as Record<string, unknown>)[key];
    const b = (fresh as unknown as Record<string, unknown>)[key];
    if (isDeepStrictEqual(a, b)) continue;
    if (reloadable.has(key)) {
      next[key] = b;
      applied.push(flagOf(key));
    } else if (key === "acme" && isPlain(a) && isPlain(b)) {
      // One flag per field: name the fields that differ.
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (!isDeepStrictEqual(a[k], b[k])) refused.push(flagOf(`acme.${k}`));
      }
    } else refused.push(flagOf(key));
  }
  return { next: next as unknown as Config, applied, refused };
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
