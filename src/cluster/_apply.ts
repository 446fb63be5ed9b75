/**
 * Committed entries into the store: what each entry becomes as a store command, applied in one
 * transaction (`Store.applyMany`). A normal entry is a proposal (request id and command); a
 * conf-change entry changes raft's membership and becomes a `conf` command carrying the member
 * table's change (the member's name and address from the change's context). Deterministic: the
 * same log gives the same tables on every member.
 *
 * @module
 */
import { errorText } from "../lib/error_text.ts";
import { pack, RESET_BUFFER_MODE, unpack } from "msgpackr";
import {
  type ConfChange,
  type ConfState,
  decodeConfChange,
  type Entry,
  type RawNode,
} from "../../raft/mod.ts";
import type { ApplyEntry, ApplyResult, Command, Store } from "../store/mod.ts";
import { NODE_NAME_MAX } from "../lib/node_name.ts";

/** Normal entry payload: request id and command. */
export interface Proposal {
  r: string;
  c: Command;
}

/** Member info carried in a conf change's context. */
export interface JoinContext {
  name: string;
  address: string;
  nonce: string;
}

/** An applied entry that carried a request id. */
export interface AppliedProposal {
  requestId: string;
  index: number;
  result: ApplyResult;
}

/** What applying needs of the runtime. */
export interface ApplyContext {
  readonly store: Store;
  readonly o: { log: (line: string) => void };
  readonly self: number;
  /** Member addresses, updated from the conf changes' contexts. */
  readonly addresses: Map<number, string>;
  /** The raft node the conf changes are applied to. */
  readonly node: RawNode | undefined;
  /** A conf change removed this member. */
  selfRemoved(): void;
}

/** Applies `entries` (committed, in order) to the store; returns those with request ids. */
export function applyCommitted(ctx: ApplyContext, entries: readonly Entry[]): AppliedProposal[] {
  const node = ctx.node!;
  const batch: ApplyEntry[] = [];
  for (const e of entries) {
    if (e.type === "confChange") {
      batch.push({ index: e.index, command: applyConfChange(ctx, node, e) });
    } else if (e.data.byteLength === 0) {
      batch.push({ index: e.index, command: { type: "noop" } });
    } else {
      const p = decodeProposal(e.data);
      batch.push({ index: e.index, command: p?.c ?? null, requestId: p?.r });
    }
  }
  const results = ctx.store.applyMany(batch);
  const done: AppliedProposal[] = [];
  batch.forEach((b, i) => {
    if (b.requestId !== undefined) {
      done.push({ requestId: b.requestId, index: b.index, result: results[i]! });
    }
  });
  return done;
}

function applyConfChange(ctx: ApplyContext, node: RawNode, e: Entry): Command {
  let cc: ConfChange;
  let cs: ConfState;
  try {
    cc = decodeConfChange(e.data);
    cs = node.applyConfChange(cc);
  } catch (err) {
    ctx.o.log(`cluster: conf change at ${e.index} not applied: ${errorText(err)}`);
    const cur = node.status().config;
    return { type: "conf", voters: cur.voters, learners: cur.learners };
  }
  const cmd: Command = { type: "conf", voters: [...cs.voters], learners: [...cs.learners] };
  if (cc.type === "removeNode") {
    cmd.remove = cc.nodeId;
    if (cc.nodeId === ctx.self) ctx.selfRemoved();
  } else if (cc.context !== undefined) {
    try {
      const jc = unpack(cc.context) as JoinContext;
      if (typeof jc?.name === "string" && typeof jc.address === "string") {
        cmd.upsert = {
          id: cc.nodeId,
          name: jc.name,
          address: jc.address,
          ...(typeof jc.nonce === "string" ? { nonce: jc.nonce } : {}),
        };
        ctx.addresses.set(cc.nodeId, jc.address);
      }
    } catch { /* a context we cannot read: membership still changes, name stays unknown */ }
    if (cmd.upsert !== undefined && cmd.upsert.name.length > NODE_NAME_MAX) delete cmd.upsert;
  }
  return cmd;
}

/**
 * The entry payload of a proposal, in an array of its own size: not a view into msgpackr's
 * shared output buffer (a few MiB once large entries went through it), which an entry waiting
 * in the log or a proposal waiting for its apply would keep alive, and from the start of that
 * buffer (RESET_BUFFER_MODE), so large entries do not use it up and make it allocate anew.
 */
export function encodeProposal(p: Proposal): Uint8Array {
  return new Uint8Array(pack(p, RESET_BUFFER_MODE));
}

/** The context of a conf change that adds member `ctx.name`. */
export function encodeJoinContext(ctx: JoinContext): Uint8Array {
  return pack(ctx);
}

/**
 * A proposal entry's payload, or undefined when malformed: then it is applied as an invalid
 * command, rejected the same way everywhere. Membership changes only come from conf-change
 * entries, never from a proposal: a proposal smuggling one is invalid too.
 */
export function decodeProposal(data: Uint8Array): { r?: string; c: Command | null } | undefined {
  let p: Proposal | undefined;
  try {
    p = unpack(data) as Proposal;
  } catch {
    return undefined;
  }
  const c = p?.c as { type?: unknown; commands?: { type?: unknown }[] } | undefined;
  const smuggled = c?.type === "conf" ||
    (c?.type === "batch" && Array.isArray(c.commands) &&
      c.commands.some((x) => x?.type === "conf"));
  return {
    r: typeof p?.r === "string" ? p.r : undefined,
    c: smuggled ? null : p?.c ?? null,
  };
}
