/**
 * Reading a container's configuration from its labels and environment: Registrator's
 * `SERVICE_*` conventions (from labels or env, labels win) and berth's `berth.*` labels. Values
 * are parsed here; a bad value becomes a Problem naming the label, never an exception.
 *
 * @module
 */
import { parseDuration } from "../lib/duration.ts";
import type { ContainerInfo } from "./container.ts";

/** A label or env value the watcher could not use; the watcher logs it once per container. */
export interface Problem {
  /** Container name. */
  container: string;
  containerId: string;
  label: string;
  message: string;
}

/** Longest label or env value read (longer ones are a Problem). */
export const LABEL_BYTES_MAX = 4096;
/** Most env entries read from one container. */
export const ENV_ENTRIES_MAX = 4096;

/** Where a container's settings come from: labels first, then env for `SERVICE_*` keys. */
export class ContainerSettings {
  readonly #labels: Record<string, string>;
  readonly #env: Map<string, string>;
  readonly #container: string;
  readonly #containerId: string;
  readonly problems: Problem[] = [];

  constructor(container: string, containerId: string, c: ContainerInfo) {
    this.#container = container;
    this.#containerId = containerId;
    this.#labels = c.Config?.Labels ?? {};
    this.#env = new Map();
    for (const e of (c.Config?.Env ?? []).slice(0, ENV_ENTRIES_MAX)) {
      const eq = e.indexOf("=");
      if (eq > 0) this.#env.set(e.slice(0, eq), e.slice(eq + 1));
    }
  }

  problem(label: string, message: string): void {
    this.problems.push({
      container: this.#container,
      containerId: this.#containerId,
      label,
      message,
    });
  }

  /** A `berth.*` or other label; undefined when absent or too long. */
  label(key: string): string | undefined {
    return this.#bounded(key, this.#labels[key]);
  }

  /** A Registrator key from labels, else env. */
  service(key: string): string | undefined {
    return this.label(key) ?? this.#bounded(key, this.#env.get(key));
  }

  /** Every Registrator key (`SERVICE_*`) present in labels or env, labels winning. */
  serviceKeys(): string[] {
    const keys = new Set<string>();
    for (const k of this.#env.keys()) if (k.startsWith("SERVICE_")) keys.add(k);
    for (const k of Object.keys(this.#labels)) if (k.startsWith("SERVICE_")) keys.add(k);
    return [...keys].sort();
  }

  #bounded(key: string, v: string | undefined): string | undefined {
    if (v === undefined) return undefined;
    if (v.length > LABEL_BYTES_MAX) {
      this.problem(key, `longer than ${LABEL_BYTES_MAX} characters, ignored`);
      return undefined;
    }
    return v;
  }

  /** An integer in [min, max]; a bad value is a Problem and gives undefined. */
  int(key: string, v: string | undefined, min: number, max: number): number | undefined {
    if (v === undefined || v.trim() === "") return undefined;
    const t = v.trim();
    const n = /^-?\d+$/.test(t) ? Number(t) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problem(
        key,
        `${key}=${JSON.stringify(v)}: expected an integer in [${min}, ${max}]; using the default`,
      );
      return undefined;
    }
    return n;
  }

  /** A duration like `5s`, `250ms`, `1m30s`, in [minMs, maxMs]. */
  duration(key: string, v: string | undefined, minMs: number, maxMs: number): number | undefined {
    if (v === undefined || v.trim() === "") return undefined;
    let ms: number;
    try {
      ms = parseDuration(v.trim());
    } catch {
      ms = NaN;
    }
    if (!(ms >= minMs && ms <= maxMs)) {
      this.problem(
        key,
        `${key}=${JSON.stringify(v)}: expected a duration like 5s or 500ms, ` +
          `between ${minMs}ms and ${maxMs}ms; using the default`,
      );
      return undefined;
    }
    return ms;
  }

  /** true/false (also 1/0, yes/no, on/off); anything else is a Problem. */
  bool(key: string, v: string | undefined): boolean | undefined {
    if (v === undefined || v.trim() === "") return undefined;
    const t = v.trim().toLowerCase();
    if (["true", "1", "yes", "on"].includes(t)) return true;
    if (["false", "0", "no", "off"].includes(t)) return false;
    this.problem(key, `${key}=${JSON.stringify(v)}: expected true or false; using the default`);
    return undefined;
  }
}

/** Comma-separated list, trimmed, empty items dropped, duplicates removed. */
export function splitList(v: string | undefined): string[] {
  if (v === undefined) return [];
  return [...new Set(v.split(",").map((s) => s.trim()).filter((s) => s.length > 0))];
}

/** Registrator's ignore flag: any value but false/0/no/off (or empty) ignores. */
export function isIgnoreValue(v: string | undefined): boolean {
  if (v === undefined) return false;
  const t = v.trim().toLowerCase();
  return t !== "" && !["false", "0", "no", "off"].includes(t);
}
