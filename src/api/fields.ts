/**
 * Reading JSON request bodies field by field, as Consul's Go decoding does (names match
 * case-insensitively; absent and null are the same): typed lookups that answer 400 naming the
 * field, and field tables (`FieldSpec`) that say per field its name, type, documentation and
 * what it fills (service_definition.ts, check_definition.ts).
 *
 * @module
 */
import { CommandError } from "../store/mod.ts";
import { badRequest } from "./http_error.ts";

export interface Kinds {
  string: string;
  number: number;
  boolean: boolean;
  object: Record<string, unknown>;
  array: unknown[];
  strings: string[];
  stringMap: Record<string, string>;
}

const WANT: Record<keyof Kinds, string> = {
  string: "a string",
  number: "a number",
  boolean: "true or false",
  object: "an object",
  array: "a list",
  strings: "a list of strings",
  stringMap: "an object of string values",
};

/** The field `name` of `o`, matched case-insensitively as Go's JSON decoding does. */
export function lookup(o: Record<string, unknown>, name: string): unknown {
  if (name in o) return o[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k];
  return undefined;
}

function isKind(v: unknown, kind: keyof Kinds): boolean {
  switch (kind) {
    case "string":
    case "number":
    case "boolean":
      return typeof v === kind && (kind !== "number" || Number.isFinite(v));
    case "object":
      return typeof v === "object" && v !== null && !Array.isArray(v);
    case "array":
      return Array.isArray(v);
    case "strings":
      return Array.isArray(v) && v.every((x) => typeof x === "string");
    case "stringMap":
      return isKind(v, "object") &&
        Object.values(v as object).every((x) => typeof x === "string");
  }
}

/** The field `name` of `o` (absent or null → undefined); 400 naming it when of the wrong type. */
export function optionalField<K extends keyof Kinds>(
  o: Record<string, unknown>,
  name: string,
  kind: K,
  what: string,
): Kinds[K] | undefined {
  const v = lookup(o, name);
  if (v === undefined || v === null) return undefined;
  if (!isKind(v, kind)) {
    const got = Array.isArray(v) ? "a list" : typeof v;
    throw badRequest(`${what}: ${name} must be ${WANT[kind]}, got ${got}`);
  }
  return v as Kinds[K];
}

/** Like optionalField, but 400 when missing (or an empty string). */
export function field<K extends keyof Kinds>(
  o: Record<string, unknown>,
  name: string,
  kind: K,
  what: string,
): Kinds[K] {
  const v = optionalField(o, name, kind, what);
  if (v === undefined || v === "") throw badRequest(`${what}: missing ${name}`);
  return v;
}

/** Runs a store rule; its CommandError becomes a 400 prefixed with `what`. */
export function ruled<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof CommandError) throw badRequest(`${what}: ${e.message}`);
    throw e;
  }
}

/** One field of a body: Consul's name, its JSON type, and how it fills `target`. */
export interface FieldSpec<T, K extends keyof Kinds = keyof Kinds> {
  name: string;
  kind: K;
  doc: string;
  /** Called when the field is present; `what` prefixes errors. */
  set(target: T, value: Kinds[K], what: string): void;
}

export function fieldSpec<T, K extends keyof Kinds>(s: FieldSpec<T, K>): FieldSpec<T> {
  return s as unknown as FieldSpec<T>;
}

/** Reads every field of `table` present in `o` into `target`. */
export function readFields<T>(
  o: Record<string, unknown>,
  table: readonly FieldSpec<T>[],
  target: T,
  what: string,
): void {
  for (const f of table) {
    const v = optionalField(o, f.name, f.kind, what);
    if (v !== undefined) f.set(target, v, what);
  }
}
