/**
 * What every command rule module shares (validate.ts, session_commands.ts): the error they throw
 * and the size limits of names and values. A leaf, so rule modules never import each other.
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
