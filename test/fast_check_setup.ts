/**
 * fast-check's settings for the whole suite: `deno task test` loads this module before every test
 * module (`--preload`), so no test file has to import it.
 *
 * - A failing property's error ends with the command that replays it:
 *   `Replay: BERTH_FC_SEED=-2004204583 deno task test src/acl/rules_test.ts`.
 * - BERTH_FC_SEED=<seed> runs every property with that seed (fast-check's `seed` parameter), so
 *   a failure seen elsewhere (CI) shrinks to the same counterexample here. Properties are random
 *   otherwise: each run explores new inputs.
 *
 * @module
 */
import fc from "fast-check";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";

const SEED_ENV = "BERTH_FC_SEED";

/** The seed BERTH_FC_SEED names, undefined when unset or empty; throws on anything else. */
function seedFromEnv(raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed)) {
    throw new Error(
      `${SEED_ENV}: expected the integer seed a failing property printed, got ${
        JSON.stringify(raw)
      }`,
    );
  }
  return seed;
}

/** fast-check's own report of a failed run, and the command that replays it. */
function report(details: fc.RunDetails<unknown>): void {
  const message = fc.defaultReportMessage(details);
  if (message === undefined) return; // passed
  let file = Deno.mainModule;
  try {
    file = relative(Deno.cwd(), fileURLToPath(file));
  } catch { /* not a file: shown as a URL */ }
  throw new Error(
    `${message}\nReplay: ${SEED_ENV}=${details.seed} deno task test ${file}`,
    { cause: details.errorInstance },
  );
}

const seed = seedFromEnv(Deno.env.get(SEED_ENV));
// `reporter`, not `asyncReporter`: fast-check uses a synchronous reporter for async properties
// too, while an asyncReporter would leave a synchronous fc.assert's failure unhandled.
fc.configureGlobal(seed === undefined ? { reporter: report } : { reporter: report, seed });
