/**
 * The `berth` binary's entry point (`deno compile` target; `deno task start` runs it as
 * `berth agent --dev`).
 *
 * @module
 */
import { runAgent } from "./agent.ts";
import { main, processIo } from "./cli/mod.ts";

Deno.exit(await main(Deno.args, processIo(runAgent)));
