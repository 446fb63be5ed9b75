/**
 * The agent's answers to signals (README "Shutdown and reload"): SIGTERM/SIGINT drain the data
 * plane (`drainParts`) before the agent stops; SIGHUP reads `--config` again (`reloadConfig`)
 * and hands the reloadable settings to the parts that use them (`reloadParts`, with the plan of
 * src/config_reload.ts); SIGUSR1 opens the access log file again (`reopenLogs`, README "Access
 * log"). src/agent.ts registers the parts; this module only sequences and logs.
 *
 * @module
 */
import { type Config, loadConfig } from "./config.ts";
import { planReload } from "./config_reload.ts";
import { errorText } from "./lib/error_text.ts";

/** A part's graceful shutdown: resolves with how many requests/streams/connections it cut. */
export type Drain = (timeoutMs: number) => Promise<number>;
/** A part taking over reloaded settings, given the whole config to run with. */
export type Reload = (config: Config) => Promise<void> | void;

/**
 * Drains every part at once for up to `timeoutMs`: one log line at the start, one at the end
 * with how many were still in flight when the timeout cut them. Resolves with that number.
 */
export async function drainParts(
  drains: readonly Drain[],
  timeoutMs: number,
  log: (line: string) => void,
): Promise<number> {
  const started = performance.now();
  log(`berth: draining: listeners closed, waiting up to ${timeoutMs} ms for requests in flight`);
  const cut = await Promise.all(drains.map((drain) =>
    drain(timeoutMs).catch((e): number => {
      log(`berth: error while draining: ${errorText(e)}`);
      return 0;
    })
  ));
  const n = cut.reduce((a, b) => a + b, 0);
  log(
    `berth: drained in ${Math.round(performance.now() - started)} ms; ${n} request(s), ` +
      `stream(s) or connection(s) still in flight cut by the ${timeoutMs} ms timeout`,
  );
  return n;
}

/**
 * Applies the reloadable settings of `fresh` that differ from `current` through `reloads`, and
 * logs what changed and, in one line, what differs but needs a restart. Resolves with the
 * config to run with (`current` when nothing reloadable changed).
 */
export async function reloadParts(
  current: Config,
  fresh: Config,
  reloads: readonly Reload[],
  log: (line: string) => void,
): Promise<Config> {
  const plan = planReload(current, fresh);
  if (plan.refused.length > 0) {
    log(`berth: reload: not applied, a restart is needed to change: ${plan.refused.join(", ")}`);
  }
  if (plan.applied.length === 0) {
    log("berth: reload: no setting that can change live changed");
    return current;
  }
  for (const apply of reloads) {
    try {
      await apply(plan.next);
    } catch (e) {
      log(`berth: reload: ${errorText(e)}`);
    }
  }
  log(`berth: reload: applied ${plan.applied.join(", ")}`);
  return plan.next;
}

/** What `reloadConfig` needs of the agent. */
export interface Reloadable {
  readonly config: Config;
  reload(fresh: Config): Promise<void>;
}

/**
 * SIGHUP: reads the config again from the same `argv` (flags and env still win over the file);
 * without `--config`, or when it does not load, one line and nothing changes.
 */
export async function reloadConfig(
  agent: Reloadable,
  argv: readonly string[],
  log: (line: string) => void = (line) => console.error(line),
): Promise<void> {
  const file = agent.config.configFile;
  if (file === null) {
    log("berth: SIGHUP: no --config file, nothing to reload");
    return;
  }
  let fresh: Config;
  try {
    fresh = loadConfig(argv, { warn: () => {} }); // its warnings were shown at start
  } catch (e) {
    log(`berth: SIGHUP: ${file} not reloaded, nothing changed: ${errorText(e)}`);
    return;
  }
  log(`berth: SIGHUP: reloading ${file}`);
  await agent.reload(fresh);
}

/**
 * SIGUSR1: opens the access log file `target` again through `reopens` (the proxy's, or each
 * worker's), with one log line; a failure keeps the old file (one line naming why).
 */
export async function reopenLogs(
  reopens: readonly (() => Promise<void>)[],
  target: string | null,
  log: (line: string) => void,
): Promise<void> {
  if (target === null || target === "stdout" || reopens.length === 0) {
    log("berth: SIGUSR1: no access log file to reopen");
    return;
  }
  try {
    await Promise.all(reopens.map((reopen) => reopen()));
    log(`berth: SIGUSR1: access log ${target} reopened`);
  } catch (e) {
    log(`berth: SIGUSR1: ${errorText(e)}; writing on to the old file`);
  }
}
