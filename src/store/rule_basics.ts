/**
 * What every command rule module shares (validate.ts, session_commands.ts): the error they throw,
 * the size limits of names and values, and the shape checks (a string, an integer, bytes, a duration). A
 * leaf, so rule modules never import each other.
 *
 * @module
 */

/**
 * A command or field that breaks a rule. `want` is what the rule accepts ("an integer in
 * [0, 65535]"), for callers that word their own line around it.
 */
export class CommandError extends Error {
  override name = "CommandError";
  readonly want: string;
  constructor(message: string, want = "") {
    super(message);
    this.want = want;
  }
}

/** Throws the CommandError `<path>: expected <want>, got <what it got>`. */
export function fail(path: string, want: string, got: unknown): never {
  const shown = typeof got === "string" ? JSON.stringify(got.slice(0, 40)) : typeof got;
  throw new CommandError(`${path}: expected ${want}, got ${shown}`, want);
}

/** Longest key, service name, node name or instance id accepted. */
export const NAME_BYTES_MAX = 512;
/** Largest KV value accepted (Consul's default limit). */
export const VALUE_BYTES_MAX = 512 * 1024;

/** An object (not null, not a list). */
export function obj(x: unknown, path: string): Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) fail(path, "an object", x);
  return x as Record<string, unknown>;
}

/** A string of at most NAME_BYTES_MAX characters, empty only with `empty`. */
export function str(x: unknown, path: string, opts: { empty?: boolean } = {}): string {
  if (typeof x !== "string") fail(path, "a string", x);
  if (!opts.empty && x.length === 0) fail(path, "a non-empty string", x);
  if (x.length > NAME_BYTES_MAX) fail(path, `at most ${NAME_BYTES_MAX} characters`, x);
  return x;
}

/** An integer in [min, max]. */
export function int(x: unknown, path: string, min: number, max: number): number {
  if (typeof x !== "number" || !Number.isInteger(x) || x < min || x > max) {
    fail(path, `an integer in [${min}, ${max}]`, typeof x === "number" ? String(x) : x);
  }
  return x;
}

/** Bytes, at most VALUE_BYTES_MAX. */
export function bytes(x: unknown, path: string): Uint8Array {
  if (!(x instanceof Uint8Array)) fail(path, "bytes", x);
  if (x.byteLength > VALUE_BYTES_MAX) fail(path, `at most ${VALUE_BYTES_MAX} bytes`, "bytes");
  return x;
}

/** An integer in [min, max], or undefined when absent (undefined or null). */
export function optInt(x: unknown, path: string, min: number, max: number): number | undefined {
  return x === undefined || x === null ? undefined : int(x, path, min, max);
}

/** `90000` → `90s`, `3600000` → `1h`: bounds as people write them. */
export function formatMs(ms: number): string {
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** Whole milliseconds in [min, max]. */
export function durationMs(x: unknown, path: string, min: number, max: number): number {
  if (typeof x !== "number" || !Number.isInteger(x) || x < min || x > max) {
    fail(
      path,
      `a duration from ${formatMs(min)} to ${formatMs(max)}`,
      typeof x === "number" ? `${x}ms` : x,
    );
  }
  return x;
}
