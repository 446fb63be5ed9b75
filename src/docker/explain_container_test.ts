import assert from "node:assert/strict";
import type { ContainerInfo } from "./container.ts";
import type { DesiredOptions } from "./desired.ts";
import { desiredInstances } from "./desired.ts";
import { explainContainer, findContainer } from "./explain_container.ts";

const OPTS: DesiredOptions = { node: "h1", advertise: "10.0.0.5", internal: false };

function container(
  name: string,
  labels: Record<string, string>,
  ports: Record<string, { HostIp?: string; HostPort?: string }[] | null>,
  env: string[] = [],
): ContainerInfo {
  return {
    Id: `c0ffee${name}`.padEnd(64, "0"),
    Name: `/${name}`,
    Config: {
      Image: "berth-test",
      Labels: labels,
      Env: env,
      ExposedPorts: Object.fromEntries(Object.keys(ports).map((k) => [k, {}])),
    },
    State: { Status: "running", Running: true },
    HostConfig: { NetworkMode: "bridge" },
    NetworkSettings: { Ports: ports },
  };
}

Deno.test("explainContainer() shows each port's instance, an unpublished port's reason and the problems", () => {
  const c = container("web", { "berth.weight": "heavy", "berth.service": "web", other: "x" }, {
    "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "32768" }],
    "9000/tcp": null,
  });
  const problems = desiredInstances([c], OPTS).problems;
  const e = explainContainer(c, OPTS, problems);
  assert.deepEqual(e.ports, [
    {
      port: "80/tcp",
      published: "0.0.0.0:32768",
      instance: "h1:web:80",
      service: "web",
      reason: null,
    },
    {
      port: "9000/tcp",
      published: null,
      instance: null,
      service: null,
      reason: "not published (publish it with -p, or run berth with --internal)",
    },
  ]);
  assert.deepEqual(e.labels.map((l) => l.key), ["berth.service", "berth.weight"]);
  assert.equal(e.problems.length, 1);
  assert.equal(e.problems[0]!.label, "berth.weight");
  assert.match(e.problems[0]!.message, /berth\.weight="heavy": expected .*; using 1/);
  assert.equal(e.summary, "asks for 1 instance: h1:web:80");
});

Deno.test("explainContainer() says why a port or the whole container is left out", () => {
  const ports = {
    "80/tcp": [{ HostPort: "4000" }],
    "81/tcp": [{ HostPort: "4001" }],
    "82/tcp": [{ HostPort: "4002" }],
  };
  const chosen = explainContainer(
    container("a", { "berth.port": "81" }, ports),
    OPTS,
    [],
  );
  assert.deepEqual(chosen.ports.map((p) => [p.port, p.instance, p.reason]), [
    ["80/tcp", null, "not berth.port=81"],
    ["81/tcp", "h1:a:81", null],
    ["82/tcp", null, "not berth.port=81"],
  ]);
  const portIgnored = explainContainer(
    container("b", {}, ports, ["SERVICE_82_IGNORE=1"]),
    OPTS,
    [],
  );
  assert.equal(portIgnored.ports[2]!.reason, "SERVICE_82_IGNORE=1");
  assert.deepEqual(portIgnored.labels, [{ key: "SERVICE_82_IGNORE", value: "1", from: "env" }]);
  const off = explainContainer(container("c", { "berth.enable": "false" }, ports), OPTS, []);
  assert.equal(off.summary, "not registered: berth.enable=false");
  assert.ok(off.ports.every((p) => p.reason === "the container is left out: berth.enable=false"));
  const none = explainContainer(container("d", {}, {}), OPTS, []);
  assert.equal(none.summary, "not registered: no exposed or published port");
});

Deno.test("explainContainer() under --expose-by-default=false: an unlabelled container is left out, saying so", () => {
  const ports = { "80/tcp": [{ HostPort: "4000" }] };
  const optIn = { ...OPTS, exposeByDefault: false };
  const e = explainContainer(container("e", {}, ports), optIn, []);
  const why = "not labelled berth.enable=true and no SERVICE_NAME (berth runs with " +
    "--expose-by-default=false)";
  assert.equal(e.summary, `not registered: ${why}`);
  assert.deepEqual(e.ports.map((p) => p.reason), [`the container is left out: ${why}`]);
  const on = explainContainer(container("f", { "berth.enable": "true" }, ports), optIn, []);
  assert.equal(on.summary, "asks for 1 instance: h1:f:80");
});

Deno.test("explainContainer() shows the reconcile's own skips: an instance id another container took", () => {
  const ports = { "80/tcp": [{ HostPort: "32768" }] };
  const a = container("a", { SERVICE_ID: "web" }, ports);
  const b = container("b", { SERVICE_ID: "web" }, ports);
  const d = desiredInstances([a, b], OPTS);
  const skipped = d.skipped.filter((k) => k.containerId === b.Id);
  assert.equal(skipped.length, 1);
  const e = explainContainer(b, OPTS, [], { skipped });
  assert.deepEqual(e.instances, []);
  assert.match(e.ports[0]!.reason!, /^instance id h1:web is already used by container a$/);
  assert.equal(e.summary, "not registered: no port became an instance (see ports)");
  assert.equal(e.proposeError, null);
});

Deno.test("explainContainer() past 256 ports names the ports left out, not the whole container", () => {
  const ports: Record<string, { HostPort: string }[]> = {};
  for (let p = 1000; p < 1258; p++) ports[`${p}/tcp`] = [{ HostPort: String(p + 20000) }];
  const e = explainContainer(container("many", {}, ports), OPTS, []);
  assert.equal(e.instances.length, 256);
  assert.match(e.summary, /^asks for 256 instances/);
  const left = e.ports.filter((p) => p.instance === null);
  assert.equal(left.length, 2);
  assert.match(left[0]!.reason!, /^2 ports after the first 256 \(1256\/tcp on\): too many ports$/);
});

Deno.test("explainContainer() hides the values of auth labels", () => {
  const e = explainContainer(
    container("s", { "berth.http.auth.basic": "u:$2y$05$abc", "berth.tags": "a".repeat(300) }, {}),
    OPTS,
    [],
  );
  assert.deepEqual(e.labels[0], { key: "berth.http.auth.basic", value: "(hidden)", from: "label" });
  assert.equal(e.labels[1]!.value.length, 201);
  const h = explainContainer(
    container("s", { "berth.http.request-header.X-Api-Key": "tok_123" }, {}),
    OPTS,
    [],
  );
  assert.deepEqual(h.labels[0]!.value, "(hidden)", "request header values may carry API keys");
});

Deno.test("findContainer() matches a name, a /name or a unique id prefix; says why not otherwise", () => {
  const list = [container("web", {}, {}), container("api", {}, {})];
  assert.equal((findContainer(list, "web") as ContainerInfo).Name, "/web");
  assert.equal((findContainer(list, "/api") as ContainerInfo).Name, "/api");
  assert.equal((findContainer(list, "c0ffeea") as ContainerInfo).Name, "/api");
  assert.match(
    findContainer(list, "c0ffee") as string,
    /2 containers have ids starting with c0ffee/,
  );
  assert.match(findContainer(list, "nope") as string, /no running container named .*"nope"/);
});
