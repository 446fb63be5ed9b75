/**
 * Client command flags: argv is split by the one flag parser (src/lib/flags.ts: `--name value`,
 * `--name=value`, bare `--name` for booleans, `-h` for help, `--` to end flags), then typed here.
 * Unknown flags and bad values are UsageErrors: one line, exit code 2.
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import { FlagError, parseBool, type ParsedFlags, parseFlags, parseIntIn } from "../lib/flags.ts";

export type FlagKind = "bool" | "string" | "uint";

export interface FlagSpec {
  name: string;
  kind: FlagKind;
  help: string;
  /** How help names a string flag's value (default VALUE): `--http-addr URL`. */
  value?: string;
  /** May be given several times: the values are joined with `,`. */
  repeatable?: boolean;
  /** One-letter alias: `-n 3` for `--limit 3`. */
  short?: string;
}

export class UsageError extends Error {
  override name = "UsageError";
}

export interface Parsed {
  flags: Map<string, string | boolean | number>;
  args: string[];
}

/** Flags every client command takes. */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  {
    name: "http-addr",
    kind: "string",
    value: "URL",
    help: "agent API address (env BERTH_HTTP_ADDR, default http://127.0.0.1:8500; " +
      "https:// trusts the CA file in env BERTH_CACERT)",
  },
  { name: "token", kind: "string", value: "TOKEN", help: "API ACL token (env BERTH_TOKEN)" },
  {
    name: "token-file",
    kind: "string",
    value: "FILE",
    help: "file holding the API ACL token, e.g. <data-dir>/management-token (env BERTH_TOKEN_FILE)",
  },
  { name: "json", kind: "bool", help: "machine-readable JSON output" },
  { name: "help", kind: "bool", help: "show this help" },
];

/** Largest integer flag value accepted. */
const UINT_MAX = Number.MAX_SAFE_INTEGER;

/** Splits argv (src/lib/flags.ts) and types each value by its flag's kind; throws UsageError. */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): Parsed {
  let split: ParsedFlags;
  try {
    split = parseFlags(argv, specs);
  } catch (e) {
    if (e instanceof FlagError) throw new UsageError(e.message);
    throw e;
  }
  const flags = new Map<string, string | boolean | number>();
  for (const [name, value] of split.values) {
    const spec = specs.find((s) => s.name === name)!;
    try {
      switch (spec.kind) {
        case "bool":
          flags.set(name, parseBool(value));
          break;
        case "uint":
          flags.set(name, parseIntIn(value, [0, UINT_MAX]));
          break;
        case "string":
          flags.set(name, value);
      }
    } catch (e) {
      const expected = spec.kind === "bool" ? "true or false" : "a non-negative integer";
      throw new UsageError(
        `--${name} ${value.slice(0, 60)}: ${errorText(e)}; expected ${expected}`,
      );
    }
  }
  return { flags, args: split.positionals };
}
