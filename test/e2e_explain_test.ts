/**
 * End to end with a real Docker engine and two real agents, with the proxy on the main thread
 * and on two workers: a container with a bad label and a port it exposes but does not publish
 * runs on the first member; `berth explain` asked of the second member lists the rejected
 * label with its message and both ports (the question is forwarded to the member the container
 * runs on), finds a container registered nowhere by asking every member, names the route and
 * the instance the balancer picks for a URL, and shows each member's proxy ejections (the other
 * member asked over the cluster transport). Run under `flock /tmp/berth-e2e.lock`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { docker } from "./docker_harness.ts";
import {
  berthCli,
  removeContainers,
  requireDocker,
  runWeb,
  startCluster,
  stopAll,
  uniq,
} from "./harness.ts";
import { waitFor } from "./wait.ts";

const e2e = { sanitizeOps: false, sanitizeResources: false };

async function explainTwoMembers(workers: number): Promise<void> {
  await requireDocker();
  const id = uniq("ex");
  const host = `web-${id}.test`;
  const agents = await startCluster(2, { docker: [0], args: ["--proxy-workers", String(workers)] });
  const [first, second] = agents as [typeof agents[0], typeof agents[0]];
  const names: string[] = [];
  try {
    const name = await runWeb({
      body: "explained",
      labels: {
        "berth.service": id,
        "berth.http.host": host,
        "berth.weight": "heavy",
        "berth.http.strip-prefix": "true",
      },
      args: ["--expose", "9000"],
    });
    names.push(name);
    // Registered nowhere: found by asking every member.
    const off = await runWeb({ body: "off", labels: { "berth.enable": "false" } });
    names.push(off);
    const instance = `${first.node}:${name}:80`;
    // Registered and passing, as the second member's replica sees it.
    await waitFor("the container's instance on the second member", async () => {
      const r = await berthCli(second, "explain", "--service", id, "--json");
      if (r.code !== 0) return false;
      const e = JSON.parse(r.out) as { instances: { id: string; served: boolean }[] };
      return e.instances.some((i) => i.id === instance && i.served);
    }, { timeoutMs: 30_000 });

    const c = await berthCli(second, "explain", name);
    assert.equal(c.code, 0, c.out);
    assert.match(c.out, new RegExp(`^Container ${name} \\([0-9a-f]{12}\\) on ${first.node}:`));
    assert.match(
      c.out,
      /Rejected labels\n {2}berth\.weight="heavy": expected .*; using 1\n/,
    );
    // The service view lists it too, asked of the member that runs the container.
    const sv = await berthCli(second, "explain", "--service", id);
    assert.equal(sv.code, 0, sv.out);
    assert.match(
      sv.out,
      new RegExp(
        `\\nRejected labels\\n {2}${name} on ${first.node}: berth\\.weight="heavy": expected .*; using 1\\n`,
      ),
    );
    assert.match(
      c.out,
      new RegExp(`\\n {2}80/tcp +127\\.0\\.0\\.1:\\d+ +${instance} +${id} +-\\n`),
    );
    assert.match(
      c.out,
      /\n {2}9000\/tcp +- +- +- +not published \(publish it with -p, or run berth with --internal\)\n/,
    );
    assert.match(c.out, new RegExp(`${instance} +yes +passing`));

    const hidden = await berthCli(second, "explain", off);
    assert.equal(hidden.code, 0, hidden.out);
    assert.match(hidden.out, new RegExp(`^Container ${off} .* on ${first.node}:`));
    assert.match(hidden.out, /\n {2}not registered: berth\.enable=false\n/);

    const u = await berthCli(second, "explain", `http://${host}/x`);
    assert.equal(u.code, 0, u.out);
    assert.match(u.out, new RegExp(`^URL http://${host}/x → route ${host}/ of service ${id}`));
    // strip-prefix on a route of / leaves the path; the instance gets it as asked.
    assert.match(u.out, /\nRules\n {2}the instance gets \/x\n/);
    assert.match(u.out, new RegExp(`\\n {2}pick now: ${instance} \\(round_robin`));
    assert.match(u.out, /\n {2}settings: berth\.http\.strip-prefix=true\n/);
    assert.equal(u.out.includes("proxy workers rotates on its own"), workers > 1, u.out);

    const s = await berthCli(second, "explain", id, "--json");
    assert.equal(s.code, 0, s.out);
    const e = JSON.parse(s.out) as { ejections: { member: string; state: string }[] };
    assert.deepEqual(
      e.ejections.map((m) => [m.member, m.state]),
      [[second.node, "answered"], [first.node, "answered"]],
    );

    // A container that ran and exited: its state, asked of every member (it registers nothing).
    const exited = `berth-e2e-exited-${id}`;
    names.push(exited);
    await docker("run", "--name", exited, "-l", "berth.weight=heavy", "berth-test", "true");
    const x = await berthCli(second, "explain", exited);
    assert.equal(x.code, 0, x.out);
    assert.match(
      x.out,
      new RegExp(`^Container ${exited} .* on ${first.node}: .*exited \\(code 0\\) `),
    );
    assert.match(
      x.out,
      /\n {2}not registered: the container is exited \(code 0\) .*; berth registers running containers only\n/,
    );
    assert.match(x.out, /Rejected labels\n {2}berth\.weight="heavy"/);

    const missing = await berthCli(second, "explain", `nope-${id}`);
    assert.equal(missing.code, 1);
    assert.match(
      missing.out,
      /^berth explain: the agent answered 404: no service, container or URL named "nope-ex[^"]*" .*: container "nope-ex[^"]*": /,
    );
    assert.equal(missing.out.trim().split("\n").length, 1);
  } finally {
    await removeContainers(names);
    await stopAll(agents);
  }
}

for (const workers of [1, 2]) {
  Deno.test({
    name: `e2e: berth explain lists a container's rejected label and ports, a URL's route and ` +
      `instance (--proxy-workers ${workers})`,
    ...e2e,
    fn: () => explainTwoMembers(workers),
  });
}
