/**
 * A file PUT with its length (`Content-Length`), streamed from disk: how `berth snapshot restore`
 * sends a snapshot. Deno's `fetch` sends a stream body chunked whatever its headers say, and
 * Deno.serve, reading a chunked body more slowly than it arrives (a restore replicates at the
 * cluster's pace), keeps memory in proportion to the bytes read until the request ends: about
 * 0.4–0.6 MiB per MiB, i.e. 80–115 MiB for a 200 MiB upload; the same body with a length
 * costs nothing (test/e2e_snapshot_test.ts measures it). node:http sends the length it is
 * given.
 *
 * @module
 */
import { createReadStream } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { pipeline } from "node:stream/promises";
import { concatBytes } from "../lib/bytes.ts";

/** The answer to a PUT: status, headers (lower-case names) and body text. */
export interface PutFileAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * PUTs the file at `path` to `url` with its length; the answer, whatever its status. Rejects
 * when the file does not open or nothing answers (the error as node:http gives it).
 */
export async function putFile(
  url: URL,
  path: string,
  opts: { headers?: Record<string, string>; caCertPem?: string; signal?: AbortSignal } = {},
): Promise<PutFileAnswer> {
  const size = (await Deno.stat(path)).size;
  const file = createReadStream(path);
  await new Promise<void>((resolve, reject) => {
    file.once("open", () => resolve());
    file.once("error", reject);
  });
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const req = send(url, {
    method: "PUT",
    headers: {
      ...opts.headers,
      "Content-Type": "application/octet-stream",
      "Content-Length": String(size),
    },
    ...(opts.caCertPem === undefined ? {} : { ca: opts.caCertPem }),
    signal: opts.signal,
  });
  const answer = new Promise<PutFileAnswer>((resolve, reject) => {
    req.once("error", reject);
    req.once("response", (res) => {
      const parts: Uint8Array[] = [];
      res.on("data", (d: Uint8Array) => parts.push(d));
      res.once("error", reject);
      res.once("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: new TextDecoder().decode(concatBytes(parts)),
        }));
    });
  });
  // An answer before the whole file went (e.g. 413, 400) ends the upload: its error is moot.
  const sent = pipeline(file, req).catch(() => {});
  try {
    return await answer;
  } finally {
    file.destroy();
    await sent;
  }
}
