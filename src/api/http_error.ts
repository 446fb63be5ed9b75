/**
 * Errors a client can cause, carried to the one error handler as a status and one plain line.
 *
 * @module
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { errorText } from "../lib/error_text.ts";
import { ClusterError, type ClusterErrorCode } from "../cluster/mod.ts";
import { concatBytes } from "../lib/bytes.ts";

/** Largest JSON body accepted on a write (a service definition, a catalog registration). */
export const JSON_BODY_BYTES_MAX = 1024 * 1024;

/** An error with the HTTP status it answers with; `message` is the one-line body. */
export class HttpError extends Error {
  override name = "HttpError";
  readonly status: ContentfulStatusCode;

  constructor(status: ContentfulStatusCode, message: string) {
    super(message);
    this.status = status;
  }
}

export function badRequest(message: string): HttpError {
  return new HttpError(400, message);
}

/** The one table from the cluster's named errors (src/cluster/errors.ts) to HTTP statuses. */
const CLUSTER_STATUS: Record<ClusterErrorCode, ContentfulStatusCode> = {
  no_leader: 503,
  not_leader: 503,
  busy: 503,
  closed: 503,
  timeout: 504,
  rejected: 400,
  unknown_member: 400,
};

/**
 * The answer to a cluster error, or undefined for any other error. `hint` ends the line of the
 * retryable ones (what the client can do meanwhile).
 */
export function clusterHttpError(e: unknown, hint = "retry shortly"): HttpError | undefined {
  if (!(e instanceof ClusterError)) return undefined;
  const status = CLUSTER_STATUS[e.code];
  switch (e.code) {
    case "no_leader":
    case "not_leader":
      return new HttpError(status, `no cluster leader: ${e.message}; ${hint}`);
    case "busy":
    case "closed":
      return new HttpError(status, `${e.message}; ${hint}`);
    default:
      return new HttpError(status, e.message);
  }
}

/**
 * Reads a request body, refusing (413) more than `bytesMax` bytes, whatever Content-Length
 * claims. The whole body is never buffered beyond the limit.
 */
export async function readBody(req: Request, bytesMax: number): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > bytesMax) {
    throw new HttpError(
      413,
      `request body of ${declared} bytes is over the ${bytesMax}-byte limit`,
    );
  }
  // A body within a valid Content-Length is read in one piece (half the CPU of a reader loop):
  // the HTTP server ends it at the declared length (checked again for a Request built here).
  if (declared !== null && /^\d{1,15}$/.test(declared)) {
    const body = await req.bytes();
    if (body.byteLength > bytesMax) {
      throw new HttpError(413, `request body is over the ${bytesMax}-byte limit`);
    }
    return body;
  }
  if (req.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > bytesMax) {
        throw new HttpError(413, `request body is over the ${bytesMax}-byte limit`);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return concatBytes(chunks, size);
}

/** Reads and parses a JSON object body; 400 naming the problem when it is not one. */
export async function readJsonObject(
  req: Request,
  what: string,
): Promise<Record<string, unknown>> {
  const bytes = await readBody(req, JSON_BODY_BYTES_MAX);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    throw badRequest(`${what}: invalid JSON body (${errorText(e)})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw badRequest(`${what}: body must be a JSON object`);
  }
  return parsed as Record<string, unknown>;
}
