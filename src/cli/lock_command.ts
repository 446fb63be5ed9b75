/**
 * `berth lock PREFIX [-n N] -- CMD…` and `berth session list`. `lock` holds a lock (or, with
 * `-n N`, one of N semaphore slots) under PREFIX (lock.ts: `consul lock`'s layout) and runs CMD
 * only while holding it: CMD starts once the lock is held; when the lock is lost, CMD gets
 * SIGTERM, then SIGKILL after LOCK_KILL_GRACE_MS; when CMD exits, the lock is released and the
 * session destroyed, and `berth lock` exits with CMD's code (128 + signal number when a signal
 * ended it; 1 when the lock was lost). SIGINT or SIGTERM to `berth lock` stops the wait, or is
 * passed on to CMD, and the lock is released all the same.
 *
 * @module
 */
import type { CommandContext, CommandSpec } from "./commands.ts";
import { formatTable } from "./table.ts";
import { acquire, LOCK_KILL_GRACE_MS, LOCK_LIMIT_MAX, LockError } from "./lock.ts";
import { errorText } from "../lib/error_text.ts";

export { LOCK_KILL_GRACE_MS };
/** Exit code when the lock was lost while CMD ran, or could not be taken. */
export const EXIT_LOCK_LOST = 1;

const SIGNALS = ["SIGINT", "SIGTERM"] as const;
type StopSignal = (typeof SIGNALS)[number];
const SIGNAL_NUMBERS: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** Calls `on` for SIGINT and SIGTERM until the returned function is called. */
function onStopSignals(on: (s: StopSignal) => void): () => void {
  const handlers = SIGNALS.map((s) => [s, () => on(s)] as const);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  return () => {
    for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  };
}

/** SIGTERM, then SIGKILL if CMD has not exited within LOCK_KILL_GRACE_MS. */
async function stopChild(child: Deno.ChildProcess, first: Deno.Signal = "SIGTERM") {
  const kill = (s: Deno.Signal) => {
    try {
      child.kill(s);
    } catch {
      // already exited
    }
  };
  kill(first);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      kill("SIGKILL");
      resolve();
    }, LOCK_KILL_GRACE_MS);
  });
  await Promise.race([child.status, killed]);
  clearTimeout(timer);
  return await child.status;
}

function exitCodeOf(status: Deno.CommandStatus): number {
  if (status.signal !== null) return 128 + (SIGNAL_NUMBERS[status.signal] ?? 0);
  return status.code;
}

async function runLock(ctx: CommandContext): Promise<number> {
  const [prefix, program, ...args] = ctx.parsed.args as [string, string, ...string[]];
  const limit = (ctx.parsed.flags.get("limit") as number | undefined) ?? 1;
  if (limit < 1 || limit > LOCK_LIMIT_MAX) {
    ctx.err(`berth lock: -n ${limit}: expected an integer in 1..${LOCK_LIMIT_MAX}`);
    return 2;
  }
  if (prefix.replace(/\/+$/, "") === "") {
    ctx.err("berth lock: PREFIX is empty; expected a KV prefix like locks/backup");
    return 2;
  }
  const name = (ctx.parsed.flags.get("name") as string | undefined) ??
    `berth lock ${prefix} (${[program, ...args].join(" ").slice(0, 80)})`;
  const waiting = new AbortController();
  let signalled: StopSignal | null = null;
  let child: Deno.ChildProcess | null = null;
  let onSignal: ((s: StopSignal) => void) | null = null;
  const unlisten = onStopSignals((s) => {
    signalled ??= s;
    if (child === null) waiting.abort();
    else onSignal?.(s);
  });
  try {
    let held;
    try {
      held = await acquire(ctx.client, prefix, {
        limit,
        name,
        signal: waiting.signal,
        killGraceMs: LOCK_KILL_GRACE_MS,
      });
    } catch (e) {
      if (!(e instanceof LockError)) throw e;
      ctx.err(`berth lock: ${e.message}`);
      return signalled === null ? EXIT_LOCK_LOST : 128 + SIGNAL_NUMBERS[signalled]!;
    }
    try {
      try {
        child = new Deno.Command(program, { args, stdin: "inherit" }).spawn();
      } catch (e) {
        ctx.err(`berth lock: cannot run ${program}: ${errorText(e)}`);
        return 127;
      }
      const spawned = child;
      const stopped = new Promise<StopSignal>((resolve) => onSignal = resolve);
      const first = await Promise.race([
        spawned.status.then((status) => ({ kind: "exited" as const, status })),
        held.lost.then((reason) => ({ kind: "lost" as const, reason })),
        stopped.then((signal) => ({ kind: "signal" as const, signal })),
      ]);
      if (first.kind === "exited") return exitCodeOf(first.status);
      if (first.kind === "lost") {
        ctx.err(`berth lock: lock lost (${first.reason}); stopping ${program}`);
        await stopChild(spawned);
        return EXIT_LOCK_LOST;
      }
      return exitCodeOf(await stopChild(spawned, first.signal));
    } finally {
      await held.release().catch((e) => {
        ctx.err(`berth lock: could not release ${prefix}: ${errorText(e)}`);
      });
    }
  } finally {
    unlisten();
  }
}

interface SessionEntry {
  ID: string;
  Name: string;
  Node: string;
  Behavior: string;
  TTL: string;
  LockDelay: number;
  NodeChecks?: string[] | null;
  ServiceChecks?: { ID: string }[] | null;
  Checks?: string[] | null;
}

/** A Go duration in nanoseconds as Consul sends LockDelay: 15000000000 → `15s`. */
function nanos(ns: number): string {
  const ms = Math.round(ns / 1e6);
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export const LOCK_COMMANDS: readonly CommandSpec[] = [
  {
    name: "lock",
    usage: "berth lock PREFIX [-n N] [--name NAME] -- CMD [ARG…]",
    summary: "run CMD only while holding the lock PREFIX/.lock (-n N: a semaphore of N)",
    flags: [
      {
        name: "limit",
        short: "n",
        kind: "uint",
        help: "holders at once (a semaphore; default 1: a lock)",
      },
      { name: "name", kind: "string", value: "NAME", help: "session name (default: the command)" },
    ],
    args: [2, Infinity],
    remote: true,
    optional: true,
    run: runLock,
  },
  {
    name: "session list",
    usage: "berth session list",
    summary: "sessions: ID, name, node, behavior, TTL, lock-delay, checks",
    flags: [],
    args: [0, 0],
    remote: true,
    optional: true,
    async run(ctx) {
      const r = await ctx.client.request("GET", "/v1/session/list");
      const list = (await r!.json()) as SessionEntry[];
      if (ctx.json) {
        ctx.out(JSON.stringify(list, null, 2) + "\n");
        return 0;
      }
      const checks = (s: SessionEntry) =>
        [...s.Checks ?? [], ...s.NodeChecks ?? [], ...(s.ServiceChecks ?? []).map((c) => c.ID)]
          .filter((c, i, all) => all.indexOf(c) === i).join(",");
      ctx.out(formatTable(
        ["ID", "Name", "Node", "Behavior", "TTL", "LockDelay", "Checks"],
        list.map((s) => [
          s.ID,
          s.Name,
          s.Node,
          s.Behavior,
          s.TTL || "-",
          nanos(s.LockDelay),
          checks(s) || "-",
        ]),
      ));
      return 0;
    },
  },
];
