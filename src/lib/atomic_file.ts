/**
 * Files replaced atomically: written and synced beside their place, then renamed over it, so a
 * crash leaves the old file or the new one, never a half-written one. A leaf module: imports
 * nothing from berth but error_text.ts.
 *
 * @module
 */
import { errorText } from "./error_text.ts";

/**
 * Writes `text` to `path` atomically with `mode` (0600 for secrets: the file has that mode from
 * its creation on, whatever the umask). Throws one line naming the file.
 */
export function writeFileAtomic(path: string, text: string, mode: number): void {
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    {
      using f = Deno.openSync(tmp, { write: true, create: true, truncate: true, mode });
      Deno.chmodSync(tmp, mode);
      const bytes = new TextEncoder().encode(text);
      for (let off = 0; off < bytes.byteLength;) off += f.writeSync(bytes.subarray(off));
      f.syncSync();
    }
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* not there */ }
    throw new Error(`cannot write ${path}: ${errorText(e)}`);
  }
}
