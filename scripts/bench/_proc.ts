/**
 * Processes of the side-by-side benches (`bench http`, `bench dns`, `bench isolation`): servers
 * spawned pinned to cores or not (`taskset`), their CPU time from /proc, load clients run with
 * their own CPU time measured (bash's `times` after the client exits: user + system of the
 * waited child, so a reader sees whether the client was the limit), and a registry of what is
 * running so an interrupted bench stops it all (scripts/bench.ts on SIGINT/SIGTERM).
 *
 * @module
 */
import { errorText } from "../../src/lib/error_text.ts";

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** User + system CPU time of `pids` so far (all their threads), in ms; a gone pid counts 0. */
export function cpuMs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * 1000 / USER_HZ;
}

/** CPU time every core of the machine spent busy so far (all but idle and iowait), in ms. */
export function machineBusyMs(): number {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((s, x) => s + x, 0); // user … steal (guest is in user)
  return (total - f[3]! - f[4]!) * 1000 / USER_HZ;
}

/** `pid` and its children (an nginx master and its workers); just `pid` when it is gone. */
export function withChildren(pid: number): number[] {
  try {
    const children = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim();
    return [pid, ...(children === "" ? [] : children.split(" ").map(Number))];
  } catch {
    return [pid];
  }
}

/** Everything a bench started and has not stopped yet: stopped by `stopEverything`. */
const running = new Set<() => Promise<void>>();

/** Registers `stop` until it has run (call the returned function instead of `stop`). */
export function stopOnExit(stop: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const once = () => {
    running.delete(once);
    done ??= stop();
    return done;
  };
  running.add(once);
  return once;
}

/** Stops whatever is still running (an interrupted bench). */
export async function stopEverything(): Promise<void> {
  await Promise.all([...running].map((s) => s().catch(() => {})));
}

/** A process a bench started. */
export interface Proc {
  pid: number;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it exited. */
  stop(): Promise<void>;
  /** Whether it exited already (a server that failed to start). */
  exited(): boolean;
}

/**
 * Spawns `cmd` (stdout and stderr to `logPath`, or discarded), pinned to `cpus` (taskset's
 * list, e.g. "0" or "0,1"; its children inherit the affinity) when given.
 */
export function startProc(
  cmd: string,
  args: string[],
  opts: { cpus?: string; logPath?: string } = {},
): Proc {
  const [bin, argv] = opts.cpus === undefined
    ? [cmd, args]
    : ["taskset", ["-c", opts.cpus, cmd, ...args]];
  const log = opts.logPath === undefined
    ? undefined
    : Deno.openSync(opts.logPath, { write: true, create: true, append: true });
  const child = new Deno.Command(bin, {
    args: argv,
    stdin: "null",
    stdout: log === undefined ? "null" : "piped",
    stderr: log === undefined ? "null" : "piped",
  }).spawn();
  const pumps = log === undefined ? [] : [child.stdout, child.stderr].map(async (s) => {
    try {
      for await (const chunk of s) log.writeSync(chunk);
    } catch { /* gone */ }
  });
  let gone = false;
  const status = child.status.then(async (s) => {
    gone = true;
    await Promise.all(pumps);
    log?.close();
    return s;
  });
  const stop = stopOnExit(async () => {
    if (!gone) child.kill("SIGTERM");
    const t = setTimeout(() => {
      if (!gone) child.kill("SIGKILL");
    }, 5000);
    await status;
    clearTimeout(t);
  });
  return { pid: child.pid, stop, exited: () => gone };
}

/** Pins every thread of running process `pid` to `cpus`; threads it starts later inherit it. */
export async function pin(pid: number, cpus: string): Promise<void> {
  const out = await new Deno.Command("taskset", {
    args: ["-a", "-p", "-c", cpus, String(pid)],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`taskset -a -p -c ${cpus} ${pid}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** What a load client printed, and the CPU it used. */
export interface ClientRun {
  stdout: string;
  stderr: string;
  /** Wall time of the run, ms. */
  wallMs: number;
  /** User + system CPU time of the client, ms. */
  cpuMs: number;
}

/** bash `times`' second line (the waited children's user and system time), in ms. */
export function parseTimes(text: string): number {
  const lines = [...text.matchAll(/^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/gm)];
  const children = lines.at(-1);
  if (lines.length < 2 || children === undefined) {
    throw new Error(`no CPU times in the client's output:\n${text.slice(-500)}`);
  }
  const [um, us, sm, ss] = children.slice(1).map(Number) as number[];
  return (um! * 60 + us! + sm! * 60 + ss!) * 1000;
}

/**
 * Runs a load client (`cmd args`) to its end, killed after `limitSeconds` (then 5 s more for
 * SIGKILL); throws with its output when it fails. Its stdout goes to `stdoutPath` when given
 * (large verbose output), else is returned.
 */
export async function runClient(
  cmd: string,
  args: string[],
  opts: { limitSeconds: number; stdoutPath?: string },
): Promise<ClientRun> {
  const redirect = opts.stdoutPath === undefined ? "" : ' > "$BENCH_STDOUT"';
  const script = `timeout -k 5 ${Math.ceil(opts.limitSeconds)} "$@"${redirect}; s=$?; ` +
    `times >&2; exit $s`;
  const t0 = performance.now();
  const out = await new Deno.Command("bash", {
    args: ["-c", script, "bench-client", cmd, ...args],
    env: opts.stdoutPath === undefined ? {} : { BENCH_STDOUT: opts.stdoutPath },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const wallMs = performance.now() - t0;
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${out.code}${out.code === 124 ? ": timed out" : ""}` +
        `):\n${(stdout + stderr).slice(-2000)}`,
    );
  }
  let used: number;
  try {
    used = parseTimes(stderr);
  } catch (e) {
    throw new Error(`${cmd}: ${errorText(e)}`);
  }
  return { stdout, stderr, wallMs, cpuMs: used };
}
