/**
 * Command-line flags: `--name value`, `--name=value`, bare `--name` for booleans, `-h` for
 * help, `--` to end flags (so a value may start with a dash). Unknown flags and bad values are
 * UsageErrors: one line, exit code 2.
 *
 * @module
 */

export type FlagKind = "bool" | "string" | "uint";

export interface FlagSpec {
  name: string;
  kind: FlagKind;
  help: string;
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
    help: "agent API address (env BERTH_HTTP_ADDR, default http://127.0.0.1:8500)",
  },
  { name: "token", kind: "string", help: "API token for writes (env BERTH_TOKEN)" },
  { name: "json", kind: "bool", help: "machine-readable JSON output" },
  { name: "help", kind: "bool", help: "show this help" },
];

/** Largest integer flag value accepted. */
const UINT_MAX = Number.MAX_SAFE_INTEGER;

export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): Parsed {
  const flags = new Map<string, string | boolean | number>();
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a === "-h") {
      flags.set("help", true);
      continue;
    }
    if (!a.startsWith("--")) {
      if (a.startsWith("-") && a.length > 1 && !/^-\d/.test(a)) {
        throw new UsageError(`unknown flag ${a} (flags start with --)`);
      }
      args.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const spec = specs.find((s) => s.name === name);
    if (spec === undefined) throw new UsageError(`unknown flag --${name}`);
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else if (spec.kind === "bool") value = "true";
    else {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`--${name} needs a value`);
      value = next;
    }
    switch (spec.kind) {
      case "bool":
        if (value !== "true" && value !== "false") {
          throw new UsageError(`--${name}=${value}: expected true or false`);
        }
        flags.set(name, value === "true");
        break;
      case "uint":
        if (!/^\d{1,16}$/.test(value) || Number(value) > UINT_MAX) {
          throw new UsageError(`--${name} ${value}: expected a non-negative integer`);
        }
        flags.set(name, Number(value));
        break;
      case "string":
        flags.set(name, value);
    }
  }
  return { flags, args };
}
