/**
 * Member names (`--node`, the join request): 1 to 63 letters, digits, `.`, `_` or `-`, starting
 * with a letter or digit, so a name is also a DNS label under `.node.DOMAIN`. A leaf module.
 *
 * @module
 */

/** Longest member name (a DNS label). */
export const NODE_NAME_MAX = 63;

/** What a member name looks like, for messages: "expected …". */
export const NODE_NAME_EXPECTED =
  `expected 1 to ${NODE_NAME_MAX} letters, digits, '.', '_' or '-', starting with a letter or digit`;

/** What is wrong with a member name (never what is expected), or undefined when it is valid. */
export function nodeNameProblem(s: string): string | undefined {
  if (s === "") return "empty";
  if (s.length > NODE_NAME_MAX) return `${s.length} characters`;
  if (!/^[A-Za-z0-9]/.test(s)) return "starts with a character other than a letter or digit";
  const bad = /[^A-Za-z0-9_.-]/.exec(s);
  return bad === null ? undefined : `has ${JSON.stringify(bad[0])}`;
}

/** Whether `s` is a valid member name. */
export function isNodeName(s: string): boolean {
  return nodeNameProblem(s) === undefined;
}

/** Throws an Error saying what is wrong with a member name (never what is expected). */
export function checkNodeName(s: string): void {
  const problem = nodeNameProblem(s);
  if (problem !== undefined) throw new Error(problem);
}
