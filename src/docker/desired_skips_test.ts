import assert from "node:assert/strict";
import type { ContainerInfo } from "./container.ts";
import { containerInstances, desiredInstances, type DesiredOptions } from "./desired.ts";
import { container, OPTS } from "./_desired_testing.ts";

const OPT_IN: DesiredOptions = { ...OPTS, exposeByDefault: false };

function reasons(c: ContainerInfo, o: DesiredOptions = OPTS): string[] {
  return containerInstances(c, o).skipped.map((s) => s.reason);
}

Deno.test("containerInstances() --expose-by-default=false registers only berth.enable=true", () => {
  const on = containerInstances(container({ labels: { "berth.enable": "TRUE" } }), OPT_IN);
  assert.equal(on.instances.length, 1);
  assert.deepEqual(on.skipped, []);
  const off = containerInstances(container(), OPT_IN);
  assert.equal(off.instances.length, 0);
  assert.deepEqual(off.problems, []);
  assert.deepEqual(off.skipped, [{
    container: "web-1",
    containerId: "c0ffeeweb-1",
    reason: "not labelled berth.enable=true and no SERVICE_NAME (berth runs with " +
      "--expose-by-default=false)",
  }]);
  assert.equal(containerInstances(container(), OPTS).instances.length, 1);
});

Deno.test("containerInstances() --expose-by-default=false also takes Registrator's explicit mode: SERVICE_NAME, SERVICE_<port>_NAME", () => {
  const named = containerInstances(container({ env: ["SERVICE_NAME=shop"] }), OPT_IN);
  assert.deepEqual(named.instances.map((i) => i.service), ["shop"]);
  assert.deepEqual(named.skipped, []);
  const ports = {
    "80/tcp": [{ HostPort: "32768" }],
    "81/tcp": [{ HostPort: "32769" }],
  };
  const onePort = containerInstances(
    container({ labels: { SERVICE_81_NAME: "admin" }, ports }),
    OPT_IN,
  );
  assert.deepEqual(onePort.instances.map((i) => [i.service, i.meta["container-port"]]), [
    ["admin", "81/tcp"],
  ]);
  assert.deepEqual(onePort.skipped.map((s) => s.reason), [
    "port 80/tcp: neither berth.enable=true nor SERVICE_NAME nor SERVICE_80_NAME (berth runs " +
    "with --expose-by-default=false)",
  ]);
  // berth.enable=false still leaves it out; a blank SERVICE_NAME is no name.
  const off = container({ labels: { "berth.enable": "false" }, env: ["SERVICE_NAME=shop"] });
  assert.deepEqual(reasons(off, OPT_IN), ["berth.enable=false"]);
  assert.equal(
    containerInstances(container({ env: ["SERVICE_NAME= "] }), OPT_IN).instances.length,
    0,
  );
  // Exposed by default, SERVICE_<port>_NAME picks no port.
  assert.equal(
    containerInstances(container({ labels: { SERVICE_81_NAME: "admin" }, ports }), OPTS)
      .instances.length,
    2,
  );
});

Deno.test("containerInstances() a bad berth.enable: a problem; registered by default, not under opt-in", () => {
  const c = container({ labels: { "berth.enable": "maybe" } });
  const byDefault = containerInstances(c, OPTS);
  assert.equal(byDefault.instances.length, 1);
  assert.match(
    byDefault.problems[0]!.message,
    /^berth\.enable="maybe": expected .*; registering it$/,
  );
  const optIn = containerInstances(c, OPT_IN);
  assert.equal(optIn.instances.length, 0);
  assert.match(optIn.problems[0]!.message, /; not registering it$/);
  assert.deepEqual(optIn.skipped.map((s) => s.reason), [
    "not labelled berth.enable=true and no SERVICE_NAME (berth runs with " +
    "--expose-by-default=false)",
  ]);
});

Deno.test("containerInstances() skipped: one reason per container or port left out", async (t) => {
  const cases: [string, ContainerInfo, string[], DesiredOptions?][] = [
    ["berth.enable=false", container({ labels: { "berth.enable": "false" } }), [
      "berth.enable=false",
    ]],
    ["SERVICE_IGNORE", container({ env: ["SERVICE_IGNORE=yes"] }), ["SERVICE_IGNORE=yes"]],
    ["no port", container({ exposed: [], ports: {} }), ["no exposed or published port"]],
    ["exposed, not published", container({ exposed: ["80/tcp"], ports: { "80/tcp": null } }), [
      "port 80/tcp: not published (publish it with -p, or run berth with --internal)",
    ]],
    [
      "SERVICE_<port>_IGNORE and berth.port",
      container({
        labels: { "berth.port": "80", SERVICE_80_IGNORE: "1" },
        ports: {
          "80/tcp": [{ HostPort: "32768" }],
          "81/tcp": [{ HostPort: "32769" }],
        },
      }),
      ["port 81/tcp: not berth.port=80", "port 80/tcp: SERVICE_80_IGNORE=1"],
    ],
    // A fuzz of the labels found these raw in `berth explain`'s lines.
    ["SERVICE_IGNORE with a line break", container({ labels: { SERVICE_IGNORE: "a\nb\u001b" } }), [
      "SERVICE_IGNORE=a\\u000ab\\u001b",
    ]],
    [
      "SERVICE_<port>_IGNORE with a NUL",
      container({
        labels: { SERVICE_81_IGNORE: "\u0000" },
        ports: { "80/tcp": [{ HostPort: "32768" }], "81/tcp": [{ HostPort: "32769" }] },
      }),
      ["port 81/tcp: SERVICE_81_IGNORE=\\u0000"],
    ],
  ];
  for (const [name, c, want, o] of cases) {
    await t.step(name, () => assert.deepEqual(reasons(c, o), want));
  }
});

Deno.test("desiredInstances() a duplicate instance id is skipped naming the container holding it", () => {
  const a = container({ name: "a", labels: { SERVICE_ID: "same" } });
  const b = container({ name: "b", labels: { SERVICE_ID: "same" } });
  const d = desiredInstances([b, a], OPTS);
  assert.deepEqual(d.instances.map((i) => i.meta.container), ["a"]);
  assert.deepEqual(d.skipped, [{
    container: "b",
    containerId: "c0ffeeb",
    reason: "port 80/tcp: instance id h1:same is already used by container a",
  }]);
  assert.equal(d.problems.length, 1);
});

/** A container on two networks (its own `app`, and `front`) for --internal. */
function twoNetworks(labels: Record<string, string>): ContainerInfo {
  const c = container({ labels, network: "app" });
  c.NetworkSettings = {
    ...c.NetworkSettings,
    IPAddress: "",
    Networks: { app: { IPAddress: "172.20.0.2" }, front: { IPAddress: "172.21.0.2" } },
  };
  return c;
}

Deno.test("containerInstances() berth.network chooses the network whose IP --internal registers", () => {
  const internal = { ...OPTS, internal: true };
  const own = containerInstances(twoNetworks({}), internal);
  assert.equal(own.instances[0]!.address, "172.20.0.2");
  const front = containerInstances(twoNetworks({ "berth.network": "front" }), internal);
  assert.equal(front.instances[0]!.address, "172.21.0.2");
  assert.deepEqual(front.problems, []);
});

Deno.test("containerInstances() berth.network without --internal or with host networking is a problem: unused", () => {
  const published = containerInstances(twoNetworks({ "berth.network": "front" }), OPTS);
  assert.equal(published.instances.length, 1);
  assert.deepEqual(published.problems.map((p) => [p.label, p.message]), [[
    "berth.network",
    'berth.network="front": unused without --internal (berth registers published ports, not ' +
    "container IPs)",
  ]]);
  const host = container({ labels: { "berth.network": "front" }, network: "host" });
  const hostNet = containerInstances(host, { ...OPTS, internal: true });
  assert.deepEqual(hostNet.problems.map((p) => p.message), [
    'berth.network="front": unused (the container uses host networking: its ports are ' +
    "registered at the host's address)",
  ]);
});

Deno.test("containerInstances() berth.network naming a network the container lacks: problem, default", () => {
  const r = containerInstances(twoNetworks({ "berth.network": "back" }), {
    ...OPTS,
    internal: true,
  });
  assert.equal(r.instances[0]!.address, "172.20.0.2");
  assert.deepEqual(r.problems.map((p) => [p.label, p.message]), [[
    "berth.network",
    'berth.network="back": the container has no address on that network (has app, front); ' +
    "using the default network",
  ]]);
  const bad = containerInstances(twoNetworks({ "berth.network": "no such" }), {
    ...OPTS,
    internal: true,
  });
  assert.equal(bad.instances[0]!.address, "172.20.0.2");
  assert.match(
    bad.problems[0]!.message,
    /^berth\.network="no such": expected a Docker network name/,
  );
});
