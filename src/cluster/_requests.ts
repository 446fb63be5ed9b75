/**
 * The requests members send each other (over `Transport.request`), and their validation: a
 * request from the network is parsed here before any unit sees it. A malformed one is refused
 * with a RejectedError (its code travels back to the sender).
 *
 * @module
 */
import { createPublicKey } from "node:crypto";
import { Buffer } from "node:buffer";
import { formatHostPort, isIp, parseHostPort } from "../lib/host_port.ts";
import { errorText } from "../lib/error_text.ts";
import { isNodeName } from "../lib/node_name.ts";
import { type Command, validateCommand } from "../store/mod.ts";
import type { ClusterCore } from "./_core.ts";
import { errorFromCode, NoLeaderError, RejectedError, TimeoutError } from "./errors.ts";
import { RemoteError, TransportError } from "./transport.ts";

export type Request =
  | { t: "propose"; id: string; cmd: Command }
  | { t: "join"; name: string; address: string; nonce: string; node?: NodeRecord }
  | { t: "remove"; id: number }
  | { t: "transfer"; to: number }
  | { t: "members" }
  /** Restarts a session's TTL on the leader (_session_timers.ts). */
  | { t: "session.renew"; id: string }
  /** One chunk of a snapshot from the leader, checked by the receiver (snapshot_stream.ts). */
  | { t: "snap.chunk"; body: unknown }
  /** The cluster CA certificate (asked by a joiner before it sends its token; _security.ts). */
  | { t: "pki.ca" }
  /** A joiner's enrollment: `<id>.<secret>` of its join token, its name and public key. */
  | { t: "pki.enroll"; token: string; name: string; publicKey: Uint8Array }
  /** A member's certificate renewal (leader only); a `node` in it is refused (_security.ts). */
  | { t: "pki.renew"; publicKey: Uint8Array; node?: string }
  /** The cluster key, asked by a member that lacks it (members only; _cluster_key.ts). */
  | { t: "clusterkey.get" }
  /**
   * A question about what only the asked member's agent knows (its proxy's ejections, a
   * container it runs: src/api/explain_peers.ts), answered by its query handler as plain data
   * (members only; RaftCluster.ask).
   */
  | { t: "query"; q: Record<string, unknown> };

export type JoinRequest = Extract<Request, { t: "join" }>;

/** The joiner's catalog node: registered by the leader before the member is added. */
export interface NodeRecord {
  /** The node's IP address (`--advertise`). */
  address: string;
  meta: Record<string, string>;
}

/** The leader's answer to a join: the new member's id and who else is there. */
export interface JoinAnswer {
  clusterId: string;
  id: number;
  members: { id: number; name: string; address: string }[];
}

/** Whether `s` is a cluster address as members advertise it (formatHostPort): `ip:port`, `[v6]:port`. */
function isClusterAddress(s: string): boolean {
  try {
    return formatHostPort(parseHostPort(s)) === s;
  } catch {
    return false;
  }
}
/** `<id>.<secret>` of a join token (the pin stays with the joiner). */
const ENROLL_TOKEN_RE = /^[a-z0-9]{6}\.[A-Za-z0-9_-]{32}$/;

/** A public key from the network: P-256 SubjectPublicKeyInfo DER. */
export function parsePublicKey(v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array) || v.byteLength > 1024) {
    throw new RejectedError("malformed request: publicKey is not DER bytes");
  }
  try {
    const k = createPublicKey({ key: Buffer.from(v), format: "der", type: "spki" });
    if (k.asymmetricKeyDetails?.namedCurve !== "prime256v1") throw new Error("not P-256");
  } catch (e) {
    throw new RejectedError(`malformed request: publicKey is no ECDSA P-256 key (${errorText(e)})`);
  }
  return v;
}

/** Longest join nonce and proposal request id. */
const TOKEN_MAX = 64;

/** The request in `body`, checked; throws a RejectedError naming what is wrong. */
export function parseRequest(body: unknown): Request {
  const r = body as Record<string, unknown> | null;
  switch (r?.t) {
    case "propose": {
      const cmd = r.cmd as { type?: unknown } | null;
      if (
        typeof r.id !== "string" || r.id.length > TOKEN_MAX || typeof cmd !== "object" ||
        cmd === null || typeof cmd.type !== "string"
      ) {
        throw new RejectedError("malformed propose request");
      }
      return { t: "propose", id: r.id, cmd: r.cmd as Command };
    }
    case "join":
      if (
        typeof r.name !== "string" || !isNodeName(r.name) ||
        typeof r.address !== "string" || !isClusterAddress(r.address) ||
        typeof r.nonce !== "string" || r.nonce.length > TOKEN_MAX
      ) {
        throw new RejectedError("malformed join request");
      }
      return {
        t: "join",
        name: r.name,
        address: r.address,
        nonce: r.nonce,
        ...(r.node === undefined ? {} : { node: parseNodeRecord(r.name, r.node) }),
      };
    case "remove":
      if (!Number.isSafeInteger(r.id)) throw new RejectedError("malformed remove request");
      return { t: "remove", id: r.id as number };
    case "transfer":
      if (!Number.isSafeInteger(r.to)) throw new RejectedError("malformed transfer request");
      return { t: "transfer", to: r.to as number };
    case "members":
      return { t: "members" };
    case "session.renew":
      if (typeof r.id !== "string" || r.id.length > TOKEN_MAX) {
        throw new RejectedError("malformed session.renew request");
      }
      return { t: "session.renew", id: r.id };
    case "snap.chunk":
      return { t: "snap.chunk", body: r };
    case "pki.ca":
      return { t: "pki.ca" };
    case "clusterkey.get":
      return { t: "clusterkey.get" };
    case "query":
      if (typeof r.q !== "object" || r.q === null || Array.isArray(r.q)) {
        throw new RejectedError("malformed query request");
      }
      return { t: "query", q: r.q as Record<string, unknown> };
    case "pki.enroll":
      if (
        typeof r.token !== "string" || !ENROLL_TOKEN_RE.test(r.token) ||
        typeof r.name !== "string" || !isNodeName(r.name)
      ) {
        throw new RejectedError("malformed pki.enroll request");
      }
      return {
        t: "pki.enroll",
        token: r.token,
        name: r.name,
        publicKey: parsePublicKey(r.publicKey),
      };
    case "pki.renew":
      if (r.node !== undefined && (typeof r.node !== "string" || !isNodeName(r.node))) {
        throw new RejectedError("malformed pki.renew request");
      }
      return {
        t: "pki.renew",
        publicKey: parsePublicKey(r.publicKey),
        ...(r.node === undefined ? {} : { node: r.node as string }),
      };
    default:
      throw new RejectedError("unknown request");
  }
}

/** A joiner's node record, checked as the `node.register` command it becomes. */
function parseNodeRecord(name: string, v: unknown): NodeRecord {
  const n = v as { address?: unknown; meta?: unknown } | null;
  if (typeof n?.address !== "string" || !isIp(n.address)) {
    throw new RejectedError("malformed join request: node.address is not an IP address");
  }
  try {
    const cmd = validateCommand({ type: "node.register", name, address: n.address, meta: n.meta });
    if (cmd.type !== "node.register") throw new Error("not a node.register");
    return { address: cmd.address, meta: cmd.meta };
  } catch (e) {
    throw new RejectedError(`malformed join request: ${errorText(e)}`);
  }
}

/** The commands that register `name`'s node and mark it alive. */
export function nodeCommands(name: string, node: NodeRecord): Command[] {
  return [
    { type: "node.register", name, address: node.address, meta: node.meta },
    { type: "node.status", name, status: "alive" },
  ];
}

/** Whether a join answer has the expected shape. */
export function isJoinAnswer(v: unknown): v is JoinAnswer {
  const a = v as JoinAnswer | null;
  return typeof a?.clusterId === "string" && typeof a.id === "number" && Array.isArray(a.members);
}

/** Sends `body` to the member at `addr` and waits up to `timeoutMs` for the answer. */
export interface MemberRequest {
  addr: string;
  body: Request;
  timeoutMs: number;
}

/**
 * A request to another member. Every failure comes back as a named cluster error, so that the
 * API never answers 500 for a member it could not reach:
 *
 * - a coded remote error: its named error (NotLeaderError, RejectedError, …);
 * - the request never left (TransportError `unsent`): NoLeaderError, nothing happened;
 * - sent, then the connection broke or the answer did not come in time (`lost`, `timeout`), or
 *   the other member failed without a code: TimeoutError, it may or may not have taken effect.
 */
export async function request(
  c: ClusterCore,
  { addr, body, timeoutMs }: MemberRequest,
): Promise<unknown> {
  try {
    return await c.transport.request(addr, body, { timeoutMs: Math.max(1, timeoutMs) });
  } catch (e) {
    throw requestError(addr, e);
  }
}

/** The named error for a failed request to the member at `addr` (see `request`). */
function requestError(addr: string, e: unknown): Error {
  if (e instanceof RemoteError) {
    const named = e.code === undefined ? undefined : errorFromCode(e.code, e.message);
    return named ??
      new TimeoutError(`${addr} failed: ${e.message}; it may or may not have taken effect`);
  }
  if (e instanceof TransportError) {
    return e.code === "unsent"
      ? new NoLeaderError(`cannot reach ${addr}: ${e.message}`, { cause: e })
      : new TimeoutError(`${addr}: ${e.message}; it may or may not have taken effect`);
  }
  return e as Error;
}

/**
 * Asks the leader (this member is not it); NoLeaderError "no leader to `what`" when none is
 * known.
 */
export function forward(
  c: ClusterCore,
  { body, timeoutMs, what }: Omit<MemberRequest, "addr"> & { what: string },
): Promise<unknown> {
  const addr = c.addresses.get(c.leader);
  if (c.leader === 0 || addr === undefined) {
    return Promise.reject(new NoLeaderError(`no leader to ${what}`));
  }
  return request(c, { addr, body, timeoutMs });
}
