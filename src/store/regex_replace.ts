/**
 * `REGEX REPLACEMENT` pairs of the `berth.http.rewrite` and `berth.http.redirect` keys: the
 * regex is RE2 syntax (re2js: matching takes linear time whatever the pattern, so a label can
 * never make the proxy backtrack for seconds); the replacement is literal text with `$0` (the
 * whole match) to `$9` (a capture group), `${N}` (group N, also before a digit: `${1}0`) and
 * `$$` (a dollar sign). Every match is replaced,
 * as Go's `Regexp.ReplaceAllString` (Traefik's replacePathRegex and redirectRegex) does.
 *
 * @module
 */
import { RE2JS } from "re2js";
import { CommandError } from "./rule_basics.ts";

/** Longest regex accepted (a meta value holds at most 512 characters anyway). */
export const REGEX_CHARS_MAX = 400;
/** Largest compiled program accepted (re2js `programSize`): bounds the work per character. */
export const REGEX_PROGRAM_MAX = 2000;

/** What a regex and its replacement look like, for messages. */
export const REGEX_REPLACE_EXPECTED =
  "REGEX REPLACEMENT (an RE2 regex without spaces; $1…$9 or ${N} in the replacement)";

/** One piece of a replacement: literal text, or the number of a group (0: the whole match). */
type Piece = string | number;

/** A compiled `REGEX REPLACEMENT`. */
export interface RegexReplace {
  readonly regex: string;
  readonly replacement: string;
  readonly re: RE2JS;
  readonly pieces: readonly Piece[];
}

/** Visible ASCII and nothing else: a replacement ends up in a request line or a Location. */
const REPLACEMENT_RE = /^[\x21-\x7e]+$/;

/**
 * A regex and its replacement → compiled; throws CommandError naming what is wrong (a regex
 * RE2 refuses, `$N` beyond the regex's groups, a `$` followed by neither digit nor `$`).
 */
export function compileRegexReplace(regex: string, replacement: string): RegexReplace {
  if (regex.length > REGEX_CHARS_MAX) {
    throw new CommandError("regex too long", `a regex of at most ${REGEX_CHARS_MAX} characters`);
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(regex);
  } catch (e) {
    const why = e instanceof Error ? e.message.replace(/^error parsing regexp: /, "") : String(e);
    throw new CommandError(`bad regex: ${why}`, `an RE2 regex (${why})`);
  }
  if (re.programSize() > REGEX_PROGRAM_MAX) {
    throw new CommandError(
      "regex too complex",
      `a simpler regex (program over ${REGEX_PROGRAM_MAX})`,
    );
  }
  if (!REPLACEMENT_RE.test(replacement)) {
    throw new CommandError("bad replacement", "a replacement of visible ASCII characters");
  }
  const groups = re.groupCount();
  const pieces: Piece[] = [];
  let text = "";
  for (let i = 0; i < replacement.length; i++) {
    const c = replacement[i]!;
    if (c !== "$") {
      text += c;
      continue;
    }
    const next = replacement[i + 1];
    i++;
    if (next === "$") {
      text += "$";
      continue;
    }
    let n: number;
    const braced = next === "{" ? /^\{([0-9]{1,3})\}/.exec(replacement.slice(i)) : null;
    if (braced !== null) {
      n = Number(braced[1]); // ${N} (Traefik's and Go's form): any group, digits may follow
      i += braced[0].length - 1;
    } else if (next === undefined || next < "0" || next > "9") {
      throw new CommandError(
        "bad $ in replacement",
        "$0…$9, ${N} or $$ after a $ in the replacement",
      );
    } else n = Number(next);
    if (n > groups) {
      throw new CommandError(
        `$${n} refers to no group`,
        `$N up to $${groups} (the regex has ${groups} group${groups === 1 ? "" : "s"})`,
      );
    }
    if (text !== "") pieces.push(text);
    text = "";
    pieces.push(n);
  }
  if (text !== "") pieces.push(text);
  return { regex, replacement, re, pieces };
}

/**
 * `input` with every match of `r.re` replaced (the replacement expanded per match); null when
 * nothing matched.
 */
export function replaceAll(r: RegexReplace, input: string): string | null {
  if (!r.re.test(input)) return null;
  return r.re.matcher(input).replaceAll((...args: unknown[]) => {
    let out = "";
    for (const p of r.pieces) {
      if (typeof p === "string") out += p;
      else out += (args[p] as string | undefined) ?? "";
    }
    return out;
  });
}

/**
 * Splits `REGEX REPLACEMENT[ TAIL]` at whitespace: two parts, or three when `tail` accepts the
 * last. A regex never needs a space (a request target holds none); null for any other count.
 */
export function splitRegexReplace(
  text: string,
  tail?: (token: string) => boolean,
): { regex: string; replacement: string; tail: string | null } | null {
  const parts = text.trim().split(/\s+/);
  let last: string | null = null;
  if (tail !== undefined && parts.length === 3 && tail(parts[2]!)) last = parts.pop()!;
  if (parts.length !== 2) return null;
  return { regex: parts[0]!, replacement: parts[1]!, tail: last };
}
