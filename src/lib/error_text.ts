/**
 * The one way berth turns a thrown value into text for a log line or an error message. A leaf
 * module: imports nothing from berth.
 *
 * @module
 */

/** Longest text errorText() returns; a longer message is cut with `…`. */
export const ERROR_TEXT_CHARS_MAX = 300;

export interface ErrorTextOptions {
  /**
   * Give the error's `code` (`ECONNREFUSED`) instead of its message when it has one: a short,
   * stable word for reasons that are compared or counted. Default false.
   */
  preferCode?: boolean;
}

/**
 * The message of any thrown value (an Error's `message`, anything else as String()), on one line
 * (runs of white space fold to one space), at most ERROR_TEXT_CHARS_MAX characters.
 */
export function errorText(e: unknown, opts: ErrorTextOptions = {}): string {
  if (opts.preferCode) {
    const code = (e as { code?: unknown } | null)?.code;
    if (typeof code === "string" && code !== "") return code;
  }
  const raw = e instanceof Error ? e.message : String(e);
  const text = raw.replace(/\s+/g, " ").trim() || (e instanceof Error ? e.name : "error");
  return text.length <= ERROR_TEXT_CHARS_MAX ? text : `${text.slice(0, ERROR_TEXT_CHARS_MAX - 1)}…`;
}

/**
 * `s` with its control characters (C0 and DEL) and the line separators U+2028 and U+2029 written
 * as `\uXXXX`, so text a request brought (a key, an excerpt of a JSON body) cannot break the line
 * of an error answer or a log.
 */
export function controlsEscaped(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/[\x00-\x1f\x7f\u2028\u2029]/g, (c) => {
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}
