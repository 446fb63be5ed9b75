/**
 * The one command-line flag parser, for the agent (src/config.ts), the client commands
 * (src/cli/args.ts) and the scripts. It splits argv by a list of known flags and leaves typing
 * to the caller, with the value parsers below for the common kinds. A leaf module.
 *
 * Accepted forms: `--name value`, `--name=value`, a bare `--name` for a `bool` flag, `-h` for
 * `--help` (when `help` is a flag), `-x value` for a flag whose `short` is `x`, `--` to end the
 * flags (what follows is positional, so a value may start with a dash). Value parsers throw an
 * Error whose message says what is wrong with the value (`not an integer`), never what was
 * expected: the caller knows that and adds it, as in
 * `--dns-ttl abc: not an integer; expected an integer in 0..86400`.
 *
 * @module
 */

/** A flag the parser accepts; a `bool` flag takes no value when bare. */
export interface FlagSpec {
  readonly name: string;
  readonly kind: string;
  /** Whether the flag may be given several times: its values are joined with `,`. */
  readonly repeatable?: boolean;
  /** A one-letter alias: `-n 3` for `--limit 3` (no `-n3`, no bundling). */
  readonly short?: string;
}

/** Argv a parser could not split: an unknown flag, a missing value, a stray argument. */
export class FlagError extends Error {
  override name = "FlagError";
}

export interface ParsedFlags {
  /**
   * Flag name (without `--`) → raw text (`"true"` for a bare bool flag); the last one wins, but
   * a repeatable flag's values are joined with `,`.
   */
  values: Map<string, string>;
  /** Arguments that are not flags, in order. */
  positionals: string[];
}

export interface ParseFlagsOptions {
  /** Whether arguments other than flags are allowed (default true). */
  positionals?: boolean;
}

/** Splits argv into flag values and positional arguments; throws FlagError. */
export function parseFlags(
  argv: readonly string[],
  specs: readonly FlagSpec[],
  opts: ParseFlagsOptions = {},
): ParsedFlags {
  const values = new Map<string, string>();
  const positionals: string[] = [];
  const positional = (a: string) => {
    if (opts.positionals === false) {
      throw new FlagError(`unexpected argument "${a.slice(0, 60)}" (flags start with --)`);
    }
    positionals.push(a);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      argv.slice(i + 1).forEach(positional);
      break;
    }
    if (a === "-h" && specs.some((s) => s.name === "help")) {
      values.set("help", "true");
      continue;
    }
    const short = /^-[A-Za-z]$/.test(a) ? specs.find((s) => s.short === a[1]) : undefined;
    if (short !== undefined) {
      if (short.kind === "bool") values.set(short.name, "true");
      else {
        const next = argv[++i];
        if (next === undefined) throw new FlagError(`${a} needs a value`);
        values.set(short.name, next);
      }
      continue;
    }
    if (!a.startsWith("--")) {
      if (a.startsWith("-") && a.length > 1 && !/^-\d/.test(a)) {
        throw new FlagError(`unknown flag ${a.slice(0, 60)} (flags start with --)`);
      }
      positional(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const spec = specs.find((s) => s.name === name);
    if (spec === undefined) throw new FlagError(`unknown flag --${name.slice(0, 60)}`);
    const set = (v: string) => {
      const before = values.get(name);
      values.set(name, spec.repeatable && before !== undefined ? `${before},${v}` : v);
    };
    if (eq >= 0) set(a.slice(eq + 1));
    else if (spec.kind === "bool") set("true");
    else {
      const next = argv[++i];
      if (next === undefined) throw new FlagError(`--${name} needs a value`);
      set(next);
    }
  }
  return { values, positionals };
}

/** `true`, `1`, `yes` → true; `false`, `0`, `no` → false; anything else throws. */
export function parseBool(text: string): boolean {
  if (text === "true" || text === "1" || text === "yes") return true;
  if (text === "false" || text === "0" || text === "no") return false;
  throw new Error("not a boolean");
}

/** A decimal integer in `[lo, hi]`; throws `not an integer` or `out of range`. */
export function parseIntIn(text: string, range: readonly [number, number]): number {
  if (!/^\d{1,16}$/.test(text)) throw new Error("not an integer");
  const n = Number(text);
  if (n < range[0] || n > range[1]) throw new Error("out of range");
  return n;
}
