import assert from "node:assert/strict";
import { agentHelp } from "./agent_flags.ts";

Deno.test("agentHelp() lists every flag once with one default and the ranges", () => {
  const help = agentHelp();
  for (
    const f of ["--dev", "--node NAME", "--data-dir DIR", "--proxy-http ADDR", "--edge-domain"]
  ) {
    assert.match(help, new RegExp(`^  ${f}`, "m"));
  }
  assert.match(help, /default 127\.0\.0\.1:8500/);
  assert.match(help, /--voters N .*\(1\.\.7, default 3\)/);
  assert.match(help, /--advertise IP .*\(default the host of --bind/);
  for (const line of help.split("\n")) {
    assert.ok((line.match(/(?<!-)default/g) ?? []).length <= 1, line); // not --acl-default
  }
});
