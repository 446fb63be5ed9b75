/**
 * The transport's wire frames and their validation. Private to src/cluster/.
 *
 * @module
 */

/** Longest `clusterId`, `address` or rejection reason accepted in a handshake frame. */
export const HANDSHAKE_TEXT_BYTES_MAX = 256;
/** Longest remote error message passed on to a request's caller. */
export const ERROR_TEXT_BYTES_MAX = 4096;
/** Longest remote error code passed on (longer ones are dropped, the message stays). */
export const ERROR_CODE_BYTES_MAX = 32;

export interface HelloFrame {
  k: "hello";
  v: number;
  clusterId: string;
  nodeId: number;
  address: string;
}
export interface WelcomeFrame {
  k: "welcome";
  clusterId: string;
  nodeId: number;
  address: string;
}
export interface RejectFrame {
  k: "reject";
  reason: string;
}
export interface MsgFrame {
  k: "msg";
  b: unknown;
}
export interface ReqFrame {
  k: "req";
  id: number;
  b: unknown;
}
export interface ResFrame {
  k: "res";
  id: number;
  b?: unknown;
  err?: string;
  /** The error's code (errors.ts), when it has one. */
  code?: string;
}
export type Frame = HelloFrame | WelcomeFrame | RejectFrame | MsgFrame | ReqFrame | ResFrame;

/** Checks a decoded frame's shape; returns the typed frame or a one-line reason. */
export function parseFrame(v: unknown): Frame | string {
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    return `frame is ${describe(v)}, not an object`;
  }
  const f = v as Record<string, unknown>;
  switch (f.k) {
    case "msg":
      return { k: "msg", b: f.b };
    case "req":
      if (!isId(f.id)) return "req frame without a valid id";
      return { k: "req", id: f.id, b: f.b };
    case "res":
      if (!isId(f.id)) return "res frame without a valid id";
      if (f.err !== undefined && typeof f.err !== "string") {
        return "res frame with a non-string err";
      }
      if (f.err === undefined) return { k: "res", id: f.id, b: f.b };
      return {
        k: "res",
        id: f.id,
        err: f.err.slice(0, ERROR_TEXT_BYTES_MAX),
        ...(typeof f.code === "string" && f.code.length <= ERROR_CODE_BYTES_MAX
          ? { code: f.code }
          : {}),
      };
    case "hello": {
      if (typeof f.v !== "number" || !Number.isInteger(f.v)) return "hello without a version";
      const bad = badIdentity(f);
      if (bad !== null) return `hello with ${bad}`;
      return {
        k: "hello",
        v: f.v,
        clusterId: f.clusterId as string,
        nodeId: f.nodeId as number,
        address: f.address as string,
      };
    }
    case "welcome": {
      const bad = badIdentity(f);
      if (bad !== null) return `welcome with ${bad}`;
      return {
        k: "welcome",
        clusterId: f.clusterId as string,
        nodeId: f.nodeId as number,
        address: f.address as string,
      };
    }
    case "reject":
      if (typeof f.reason !== "string") return "reject without a reason";
      return { k: "reject", reason: f.reason.slice(0, HANDSHAKE_TEXT_BYTES_MAX) };
    default:
      return typeof f.k === "string"
        ? `unknown frame kind "${f.k.slice(0, 32)}"`
        : "frame without a kind";
  }
}

function badIdentity(f: Record<string, unknown>): string | null {
  if (typeof f.clusterId !== "string" || f.clusterId.length > HANDSHAKE_TEXT_BYTES_MAX) {
    return "a bad clusterId";
  }
  if (typeof f.nodeId !== "number" || !Number.isSafeInteger(f.nodeId) || f.nodeId < 0) {
    return "a bad nodeId";
  }
  if (typeof f.address !== "string" || f.address.length > HANDSHAKE_TEXT_BYTES_MAX) {
    return "a bad address";
  }
  return null;
}

function isId(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return "binary";
  return `a ${typeof v}`;
}
