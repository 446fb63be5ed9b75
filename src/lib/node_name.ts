/**
 * Member names (`--node`, the join request): 1 to 63 letters, digits, `.`, `_` or `-`, starting
 * with a letter or digit, so a name is also a DNS label under `.node.DOMAIN`. A leaf module.
 *
 * @module
 */

/** What a member name looks like, for messages: "expected …". */
export const NODE_NAME_EXPECTED =
  "expected 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit";

/** Whether `s` is a valid member name. */
export function isNodeName(s: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(s);
}

/** Throws an Error saying what is wrong with a member name (never what is expected). */
export function checkNodeName(s: string): void {
  if (s === "") throw new Error("empty");
  if (s.length > 63) throw new Error(`${s.length} characters`);
  if (!/^[A-Za-z0-9]/.test(s)) {
    throw new Error("starts with a character other than a letter or digit");
  }
  const bad = /[^A-Za-z0-9_.-]/.exec(s);
  if (bad !== null) throw new Error(`has ${JSON.stringify(bad[0])}`);
}
