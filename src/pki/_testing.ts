/**
 * Test helpers for src/pki: openssl on PEM files in a temporary directory.
 *
 * @module
 */
import { execFileSync } from "node:child_process";

/** Writes `files` (name → PEM) to a fresh temp dir, runs `fn` with it, then removes it. */
export function withPemFiles<T>(files: Record<string, string>, fn: (dir: string) => T): T {
  const dir = Deno.makeTempDirSync({ prefix: "berth-pki-" });
  try {
    for (const [name, text] of Object.entries(files)) {
      Deno.writeTextFileSync(`${dir}/${name}`, text);
    }
    return fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Runs openssl; its stdout and stderr joined, and whether it exited 0. */
export function openssl(args: string[], cwd: string): { ok: boolean; out: string } {
  try {
    const out = execFileSync("openssl", args, { cwd, encoding: "utf8", stdio: "pipe" });
    return { ok: true, out };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, out: `${err.stdout ?? ""}${err.stderr ?? ""}` };
  }
}
