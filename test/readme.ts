/**
 * Reading README.md in tests: a section's text, so tests can check the README against the code
 * (and run its examples) instead of copying them.
 *
 * @module
 */

export const README_URL = new URL("../README.md", import.meta.url);

/** The text of the README section under `## title`, up to the next `## `. */
export function readmeSection(title: string): string {
  const text = Deno.readTextFileSync(README_URL);
  const start = text.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`README.md has no "## ${title}" section`);
  const end = text.indexOf("\n## ", start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}
