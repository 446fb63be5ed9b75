/**
 * The named errors of the cluster's public face. Each carries a `code` that travels with it when
 * a member answers a forwarded request (the transport's response frame has a `code` beside the
 * message), so the caller on the other member gets the same class back instead of reading the
 * message. The API maps them to HTTP statuses in one place (src/api/http_error.ts,
 * `CLUSTER_STATUS` and `clusterHttpError`).
 *
 * | class                | code             | may a retry succeed?                        |
 * |----------------------|------------------|---------------------------------------------|
 * | `NoLeaderError`      | `no_leader`      | later: no leader is known or reachable      |
 * | `NotLeaderError`     | `not_leader`     | at once, on the leader (cluster-internal)   |
 * | `BusyError`          | `busy`           | shortly: a bounded queue is full            |
 * | `TimeoutError`       | `timeout`        | unknown: it may or may not have taken effect|
 * | `RejectedError`      | `rejected`       | never: the request itself is wrong          |
 * | `UnknownMemberError` | `unknown_member` | never: names a member that does not exist   |
 * | `ClosedError`        | `closed`         | no: this member is stopping                 |
 *
 * @module
 */

export type ClusterErrorCode =
  | "no_leader"
  | "not_leader"
  | "busy"
  | "timeout"
  | "rejected"
  | "unknown_member"
  | "closed";

/** Base of the named cluster errors. */
export abstract class ClusterError extends Error {
  abstract readonly code: ClusterErrorCode;
}

/** No leader is known or reachable (yet): retry later. */
export class NoLeaderError extends ClusterError {
  override name = "NoLeaderError";
  readonly code = "no_leader";
}

/** This member is not the leader (any more); the caller retries on the leader it learns of. */
export class NotLeaderError extends ClusterError {
  override name = "NotLeaderError";
  readonly code = "not_leader";
}

/** A bounded queue (proposals in flight, uncommitted bytes) is full: retry shortly. */
export class BusyError extends ClusterError {
  override name = "BusyError";
  readonly code = "busy";
}

/** Gave up waiting; the change may or may not have taken effect. */
export class TimeoutError extends ClusterError {
  override name = "TimeoutError";
  readonly code = "timeout";
}

/** The request can never succeed as sent (too large, malformed, not allowed). */
export class RejectedError extends ClusterError {
  override name = "RejectedError";
  readonly code: ClusterErrorCode = "rejected";
}

/** Names a member that does not exist; the message lists the members there are. */
export class UnknownMemberError extends RejectedError {
  override name = "UnknownMemberError";
  override readonly code = "unknown_member";

  /** The error for `name`, listing the `members` there are. */
  static of(name: string, members: string[]): UnknownMemberError {
    const known = members.length === 0 ? "(none)" : members.join(", ");
    return new UnknownMemberError(`no member named ${name}; members: ${known}`);
  }
}

/** This member is stopping (closed, or stopped after a fatal error). */
export class ClosedError extends ClusterError {
  override name = "ClosedError";
  readonly code = "closed";
}

/** The standard "timed out" error for a change that was submitted. */
export function deadlineError(what: string): TimeoutError {
  return new TimeoutError(`${what} timed out; it may or may not have taken effect`);
}

/**
 * The named error for a `code` and message received from another member, or undefined for an
 * unknown code (the caller keeps the transport's RemoteError).
 */
export function errorFromCode(code: string, message: string): ClusterError | undefined {
  switch (code) {
    case "no_leader":
      return new NoLeaderError(message);
    case "not_leader":
      return new NotLeaderError(message);
    case "busy":
      return new BusyError(message);
    case "timeout":
      return new TimeoutError(message);
    case "rejected":
      return new RejectedError(message);
    case "unknown_member":
      return new UnknownMemberError(message);
    case "closed":
      return new ClosedError(message);
    default:
      return undefined;
  }
}
