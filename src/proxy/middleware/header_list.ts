/**
 * Edits of flat header lists [name, value, …] as the proxy keeps them (headers.ts): names
 * compared without case, the rest kept in order.
 *
 * @module
 */

/** `headers` without any header whose lower-case name is in `drop`. */
export function dropHeaders(headers: readonly string[], drop: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (!drop.has(headers[i]!.toLowerCase())) out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}

/** `headers` with `name` (lower case) set to `value` alone, at the end. */
export function setHeader(headers: readonly string[], name: string, value: string): string[] {
  const out = dropHeaders(headers, new Set([name]));
  out.push(name, value);
  return out;
}

/** The value of the first header `name` (lower case), or undefined. */
export function headerOf(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]!.length === name.length && headers[i]!.toLowerCase() === name) {
      return headers[i + 1];
    }
  }
  return undefined;
}
