/**
 * The thread that checks bcrypt passwords for basic auth (bcrypt_verifier.ts): one check takes
 * tens of milliseconds of CPU at cost 10, which would stall every connection of a proxy thread.
 * Messages `{ id, password, hash }` in, `{ id, ok }` out, one after another.
 *
 * @module
 */
import { parentPort } from "node:worker_threads";
import bcrypt from "bcryptjs";

/** A check asked of the worker. */
export interface BcryptAsk {
  id: number;
  password: string;
  hash: string;
}

/** A check's verdict (false for a hash bcryptjs refuses too). */
export interface BcryptVerdict {
  id: number;
  ok: boolean;
}

if (parentPort !== null) {
  const port = parentPort;
  port.on("message", (m: BcryptAsk) => {
    let ok = false;
    try {
      ok = bcrypt.compareSync(m.password, m.hash);
    } catch {
      ok = false;
    }
    port.postMessage({ id: m.id, ok } satisfies BcryptVerdict);
  });
}
