/**
 * The requests members send each other (over `Transport.request`), and their validation: a
 * request from the network is parsed here before any unit sees it. A malformed one is refused
 * with a RejectedError (its code travels back to the sender).
 *
 * @module
 */
import type { Command } from "../store/mod.ts";
import { RejectedError } from "./errors.ts";
import { isNodeName } from "../lib/node_name.ts";

export type Request =
  | { t: "propose"; id: string; cmd: Command }
  | { t: "join"; name: string; address: string; nonce: string }
  | { t: "remove"; id: number }
  | { t: "transfer"; to: number }
  | { t: "members" };

export type JoinRequest = Extract<Request, { t: "join" }>;

/** The leader's answer to a join: the new member's id and who else is there. */
export interface JoinAnswer {
  clusterId: string;
  id: number;
  members: { id: number; name: string; address: string }[];
}

/** Cluster addresses as members advertise them: `ip:port` or `[v6]:port`. */
const ADDRESS_RE = /^[0-9a-fA-F.:[\]]{3,64}:\d{1,5}$/;
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
        typeof r.address !== "string" || !ADDRESS_RE.test(r.address) ||
        typeof r.nonce !== "string" || r.nonce.length > TOKEN_MAX
      ) {
        throw new RejectedError("malformed join request");
      }
      return { t: "join", name: r.name, address: r.address, nonce: r.nonce };
    case "remove":
      if (!Number.isSafeInteger(r.id)) throw new RejectedError("malformed remove request");
      return { t: "remove", id: r.id as number };
    case "transfer":
      if (!Number.isSafeInteger(r.to)) throw new RejectedError("malformed transfer request");
      return { t: "transfer", to: r.to as number };
    case "members":
      return { t: "members" };
    default:
      throw new RejectedError("unknown request");
  }
}

/** Whether a join answer has the expected shape. */
export function isJoinAnswer(v: unknown): v is JoinAnswer {
  const a = v as JoinAnswer | null;
  return typeof a?.clusterId === "string" && typeof a.id === "number" && Array.isArray(a.members);
}
