import assert from "node:assert/strict";
import { containerInstances, desiredInstances, imageBaseName } from "./desired.ts";
import { container, type Fixture, one, OPTS } from "./_desired_testing.ts";

Deno.test("imageBaseName() strips registry, path, tag and digest", () => {
  const table: [string, string][] = [
    ["nginx", "nginx"],
    ["nginx:1.27", "nginx"],
    ["library/nginx:latest", "nginx"],
    ["registry.example.com:5000/team/api:v2", "api"],
    ["ghcr.io/org/worker@sha256:abcd", "worker"],
    ["ghcr.io/org/worker:1.0@sha256:abcd", "worker"],
  ];
  for (const [image, want] of table) assert.equal(imageBaseName(image), want, image);
});

Deno.test("containerInstances() registers a published port at the advertise address", () => {
  const i = one(container());
  assert.equal(i.id, "h1:web-1:80");
  assert.equal(i.service, "nginx");
  assert.equal(i.node, "h1");
  assert.equal(i.address, "10.0.0.5");
  assert.equal(i.port, 32768);
  assert.deepEqual(i.docker, { state: "running", detail: "" });
  assert.equal(i.checkResult, null);
  assert.equal(i.containerId, "c0ffeeweb-1");
  assert.deepEqual(i.tags, []);
  assert.equal(i.weight, 1);
  assert.equal(i.check, null);
  assert.equal(i.meta.container, "web-1");
  assert.equal(i.meta["container-port"], "80/tcp");
});

Deno.test("containerInstances() uses a specific HostIp, IPv4 before IPv6", () => {
  const i = one(container({
    ports: {
      "80/tcp": [{ HostIp: "::1", HostPort: "4001" }, { HostIp: "127.0.0.1", HostPort: "4000" }],
    },
  }));
  assert.equal(i.address, "127.0.0.1");
  assert.equal(i.port, 4000);
  const wild = one(container({ ports: { "80/tcp": [{ HostIp: "::", HostPort: "4002" }] } }));
  assert.equal(wild.address, "10.0.0.5");
  const empty = one(container({ ports: { "80/tcp": [{ HostIp: "", HostPort: "4003" }] } }));
  assert.equal(empty.address, "10.0.0.5");
});

Deno.test("containerInstances() ignores exposed ports that are not published", () => {
  const r = containerInstances(container({ ports: { "80/tcp": null } }), OPTS);
  assert.deepEqual(r.instances, []);
  const none = containerInstances(container({ ports: {}, exposed: [] }), OPTS);
  assert.deepEqual(none.instances, []);
  assert.deepEqual(none.problems, []);
});

Deno.test("containerInstances() names the service by label, env, compose, swarm, image", async (t) => {
  const cases: [string, Fixture, string][] = [
    ["berth.service wins", {
      labels: { "berth.service": "api", SERVICE_NAME: "x" },
      env: ["SERVICE_NAME=y"],
    }, "api"],
    [
      "SERVICE_NAME label beats env",
      { labels: { SERVICE_NAME: "x" }, env: ["SERVICE_NAME=y"] },
      "x",
    ],
    ["SERVICE_NAME env", { env: ["SERVICE_NAME=y"] }, "y"],
    ["compose service", {
      labels: {
        "com.docker.compose.service": "db",
        "com.docker.swarm.service.name": "s",
      },
    }, "db"],
    ["swarm service", { labels: { "com.docker.swarm.service.name": "s" } }, "s"],
    ["compose name made a service name", {
      labels: { "com.docker.compose.service": "My.App" },
    }, "my-app"],
    ["image base name", { image: "registry.local:5000/team/My.App:3@sha256:ff" }, "my-app"],
  ];
  for (const [what, f, want] of cases) {
    await t.step(what, () => assert.equal(one(container(f)).service, want));
  }
});

Deno.test("containerInstances() appends -<port> with several ports unless named per port", () => {
  const c = container({
    env: ["SERVICE_NAME=app", "SERVICE_9090_NAME=app-metrics"],
    ports: {
      "8080/tcp": [{ HostIp: "0.0.0.0", HostPort: "1001" }],
      "9090/tcp": [{ HostIp: "0.0.0.0", HostPort: "1002" }],
    },
  });
  const r = containerInstances(c, OPTS);
  assert.deepEqual(
    r.instances.map((i) => [i.id, i.service, i.port]),
    [["h1:web-1:8080", "app-8080", 1001], ["h1:web-1:9090", "app-metrics", 1002]],
  );
});

Deno.test("containerInstances() berth.port keeps one port; a bad or absent one keeps all", () => {
  const ports = {
    "8080/tcp": [{ HostIp: "0.0.0.0", HostPort: "1001" }],
    "9090/tcp": [{ HostIp: "0.0.0.0", HostPort: "1002" }],
  };
  const i = one(container({ labels: { "berth.port": "9090" }, ports }));
  assert.equal(i.service, "nginx");
  assert.equal(i.port, 1002);
  for (const bad of ["abc", "70000", "1234"]) {
    const r = containerInstances(container({ labels: { "berth.port": bad }, ports }), OPTS);
    assert.equal(r.instances.length, 2, bad);
    assert.equal(r.problems.length, 1, bad);
    assert.equal(r.problems[0]!.label, "berth.port");
    assert.equal(r.problems[0]!.container, "web-1");
    assert.match(r.problems[0]!.message, new RegExp(`berth.port=.*${bad}`));
  }
});

Deno.test("containerInstances() UDP ports get :udp ids and the udp tag, no HTTP routing", () => {
  const r = containerInstances(
    container({
      name: "dns",
      labels: { "berth.tags": "a", "berth.check.tcp": "true" },
      ports: {
        "53/tcp": [{ HostIp: "0.0.0.0", HostPort: "5353" }],
        "53/udp": [{ HostIp: "0.0.0.0", HostPort: "5353" }],
      },
    }),
    { ...OPTS, edgeDomain: "edge.test." },
  );
  const [tcp, udp] = r.instances;
  assert.equal(tcp!.id, "h1:dns:53");
  assert.deepEqual(tcp!.tags, ["a"]);
  assert.deepEqual(tcp!.httpHosts, ["nginx-53.edge.test"]);
  assert.notEqual(tcp!.check, null);
  assert.equal(udp!.id, "h1:dns:53:udp");
  assert.deepEqual(udp!.tags, ["a", "udp"]);
  assert.deepEqual(udp!.httpHosts, []);
  assert.equal(udp!.check, null);
  assert.deepEqual(udp!.docker, { state: "running", detail: "" });
});

Deno.test("containerInstances() one port over TCP and UDP is two ports: NAME-PORT for both as Registrator, SERVICE_<port>_NAME names both", () => {
  const ports = {
    "53/tcp": [{ HostIp: "0.0.0.0", HostPort: "5353" }],
    "53/udp": [{ HostIp: "0.0.0.0", HostPort: "5353" }],
  };
  const named = (labels: Record<string, string>) =>
    containerInstances(container({ name: "dns", labels, ports }), OPTS).instances
      .map((i) => `${i.id} ${i.service}`);
  assert.deepEqual(named({ "berth.service": "dns" }), ["h1:dns:53 dns-53", "h1:dns:53:udp dns-53"]);
  assert.deepEqual(named({ SERVICE_53_NAME: "dns" }), ["h1:dns:53 dns", "h1:dns:53:udp dns"]);
});

Deno.test("containerInstances() host networking registers exposed ports at advertise", () => {
  const i = one(container({ network: "host", ports: {}, exposed: ["8500/tcp"], ip: "" }));
  assert.equal(i.address, "10.0.0.5");
  assert.equal(i.port, 8500);
  assert.equal(i.id, "h1:web-1:8500");
});

Deno.test("containerInstances() internal registers container IP and container port", () => {
  const o = { ...OPTS, internal: true };
  const i = one(container({ ports: { "80/tcp": null }, ip: "172.17.0.9" }), o);
  assert.equal(i.address, "172.17.0.9");
  assert.equal(i.port, 80);
  const noIp = container({ network: "none", ip: "" });
  noIp.NetworkSettings!.Networks = {};
  const r = containerInstances(noIp, o);
  assert.deepEqual(r.instances, []);
  assert.equal(r.problems[0]?.label, "NetworkMode");
});

Deno.test("containerInstances() ignore rules skip the container or one port", () => {
  assert.deepEqual(
    containerInstances(container({ labels: { "berth.enable": "false" } }), OPTS).instances,
    [],
  );
  assert.deepEqual(
    containerInstances(container({ env: ["SERVICE_IGNORE=true"] }), OPTS).instances,
    [],
  );
  assert.equal(
    containerInstances(container({ env: ["SERVICE_IGNORE=false"] }), OPTS).instances.length,
    1,
  );
  const r = containerInstances(
    container({
      labels: { SERVICE_443_IGNORE: "1" },
      ports: {
        "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "1001" }],
        "443/tcp": [{ HostIp: "0.0.0.0", HostPort: "1002" }],
      },
    }),
    OPTS,
  );
  assert.deepEqual(r.instances.map((i) => [i.id, i.service]), [["h1:web-1:80", "nginx"]]);
  const bad = containerInstances(container({ labels: { "berth.enable": "maybe" } }), OPTS);
  assert.equal(bad.instances.length, 1);
  assert.equal(bad.problems[0]?.label, "berth.enable");
});

Deno.test("containerInstances() names a port without -<port> when ignores leave only it", () => {
  const ports = {
    "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "1001" }],
    "81/tcp": [{ HostIp: "0.0.0.0", HostPort: "1002" }],
  };
  const i = one(container({ env: ["SERVICE_NAME=mpi", "SERVICE_81_IGNORE=1"], ports }));
  assert.deepEqual([i.id, i.service, i.port], ["h1:web-1:80", "mpi", 1001]);
  const withId = one(container({ env: ["SERVICE_ID=m1", "SERVICE_80_IGNORE=1"], ports }));
  assert.deepEqual([withId.id, withId.service], ["h1:m1", "nginx"]);
});

Deno.test("containerInstances() tags: berth.tags, then SERVICE_<port>_TAGS, then SERVICE_TAGS", () => {
  assert.deepEqual(
    one(container({ env: ["SERVICE_TAGS=a, b,,a"] })).tags,
    ["a", "b"],
  );
  assert.deepEqual(
    one(container({ env: ["SERVICE_TAGS=a", "SERVICE_80_TAGS=p"] })).tags,
    ["p"],
  );
  assert.deepEqual(
    one(container({ labels: { "berth.tags": "x,y" }, env: ["SERVICE_TAGS=a"] })).tags,
    ["x", "y"],
  );
});

Deno.test("containerInstances() SERVICE_ID replaces the container name in the id", () => {
  assert.equal(one(container({ env: ["SERVICE_ID=api-a"] })).id, "h1:api-a");
  const r = containerInstances(
    container({
      env: ["SERVICE_ID=api-a"],
      ports: {
        "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "1001" }],
        "81/tcp": [{ HostIp: "0.0.0.0", HostPort: "1002" }],
      },
    }),
    OPTS,
  );
  assert.deepEqual(r.instances.map((i) => i.id), ["h1:api-a:80", "h1:api-a:81"]);
  const bad = containerInstances(container({ env: ["SERVICE_ID=a b"] }), OPTS);
  assert.equal(bad.instances[0]!.id, "h1:web-1:80");
  assert.equal(bad.problems[0]!.label, "SERVICE_ID");
});

Deno.test("containerInstances() other SERVICE_* keys become meta, per-port overriding", () => {
  const i = one(container({
    env: ["SERVICE_REGION=eu", "SERVICE_80_REGION=us", "SERVICE_OWNER=ops", "SERVICE_CHECK_TTL=5s"],
  }));
  assert.equal(i.meta.region, "us");
  assert.equal(i.meta.owner, "ops");
  assert.equal(i.meta.check_ttl, undefined);
  assert.equal(i.meta.name, undefined);
});

Deno.test("containerInstances() reads routing labels and weight", () => {
  const i = one(
    container({
      labels: {
        "berth.http.host": "A.example.com, b.example.com",
        "berth.http.path": "/api",
        "berth.tcp.port": "5432",
        "berth.weight": "5",
        "berth.lb": "least-conn",
        "berth.tls": "acme",
        "berth.http.proto": "GRPC",
        "berth.http.redirect": "https",
        "berth.http.hsts": "max-age=600; preload",
      },
    }),
    { ...OPTS, edgeDomain: "edge.test" },
  );
  assert.equal(i.meta["berth.lb"], "least_conn");
  assert.equal(i.meta["berth.tls"], "acme");
  assert.equal(i.meta["berth.http.proto"], "grpc");
  assert.equal(i.meta["berth.http.redirect"], "https");
  assert.equal(i.meta["berth.http.hsts"], "max-age=600; preload");
  assert.deepEqual(i.httpHosts, ["a.example.com", "b.example.com"]);
  assert.equal(i.httpPath, "/api");
  assert.equal(i.tcpPort, 5432);
  assert.equal(i.weight, 5);
  const def = one(container({ labels: { "berth.service": "shop" } }), {
    ...OPTS,
    edgeDomain: "edge.test",
  });
  assert.deepEqual(def.httpHosts, ["shop.edge.test"]);
  assert.deepEqual(one(container()).httpHosts, []);
});

Deno.test("containerInstances() bad label values are problems and fall back to defaults", async (t) => {
  const cases: [Record<string, string>, string, (i: ReturnType<typeof one>) => void][] = [
    [{ "berth.weight": "-1" }, "berth.weight", (i) => assert.equal(i.weight, 1)],
    [{ "berth.weight": "heavy" }, "berth.weight", (i) => assert.equal(i.weight, 1)],
    [{ "berth.tcp.port": "99999" }, "berth.tcp.port", (i) => assert.equal(i.tcpPort, null)],
    [{ "berth.http.path": "api" }, "berth.http.path", (i) => assert.equal(i.httpPath, null)],
    [
      { "berth.http.host": "bad host" },
      "berth.http.host",
      (i) => assert.deepEqual(i.httpHosts, []),
    ],
    [{ "berth.service": "has space" }, "berth.service", (i) => assert.equal(i.service, "nginx")],
    [
      { "berth.check.http": "/h", "berth.check.interval": "often" },
      "berth.check.interval",
      (i) => assert.equal(i.check?.intervalMs, 10_000),
    ],
    [
      { "berth.check.tcp": "true", "berth.check.timeout": "5" },
      "berth.check.timeout",
      (i) => assert.equal(i.check?.timeoutMs, 2_000),
    ],
    [{ "berth.check.http": "health" }, "berth.check.http", (i) => assert.equal(i.check, null)],
    [{ "berth.check.tcp": "sure" }, "berth.check.tcp", (i) => assert.equal(i.check, null)],
    [{ "berth.lb": "fastest" }, "berth.lb", (i) => assert.equal(i.meta["berth.lb"], undefined)],
    [{ "berth.tls": "le" }, "berth.tls", (i) => assert.equal(i.meta["berth.tls"], undefined)],
    [
      { "berth.http.proto": "h3" },
      "berth.http.proto",
      (i) => assert.equal(i.meta["berth.http.proto"], undefined),
    ],
    [{ "berth.check.grpc": "yes please" }, "berth.check.grpc", (i) => assert.equal(i.check, null)],
    [
      { "berth.http.redirect": "http" },
      "berth.http.redirect",
      (i) => assert.equal(i.meta["berth.http.redirect"], undefined),
    ],
    [
      { "berth.http.hsts": "1 year" },
      "berth.http.hsts",
      (i) => assert.equal(i.meta["berth.http.hsts"], undefined),
    ],
    [{ SERVICE_ID: "a:b" }, "SERVICE_ID", (i) => assert.equal(i.id, "h1:web-1:80")],
    [{ SERVICE_80_NAME: "a.b" }, "SERVICE_80_NAME", (i) => assert.equal(i.service, "nginx")],
    [{ "berth.tags": "x".repeat(600) }, "berth.tags", (i) => assert.deepEqual(i.tags, [])],
    [{ "berth.enable": "maybe" }, "berth.enable", (i) => assert.equal(i.service, "nginx")],
  ];
  for (const [labels, label, verify] of cases) {
    await t.step(`${JSON.stringify(labels)}`, () => {
      const r = containerInstances(container({ labels }), OPTS);
      assert.equal(r.instances.length, 1);
      verify(r.instances[0]!);
      assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
      assert.equal(r.problems[0]!.label, label);
      assert.equal(r.problems[0]!.container, "web-1");
      assert.ok(r.problems[0]!.message.includes(label), r.problems[0]!.message);
    });
  }
});

Deno.test("containerInstances() reports an unknown berth.* label and registers anyway", () => {
  const r = containerInstances(container({ labels: { "berth.weigth": "5" } }), OPTS);
  assert.equal(r.instances[0]?.weight, 1);
  assert.deepEqual(r.problems.map((p) => p.label), ["berth.weigth"]);
});

Deno.test("containerInstances() active checks from berth.check.* or SERVICE_CHECK_*", () => {
  const i = one(container({
    labels: { "berth.check.http": "/health", "berth.check.interval": "5s" },
    env: ["SERVICE_CHECK_TIMEOUT=1s"],
  }));
  assert.deepEqual(i.check, { http: "/health", intervalMs: 5000, timeoutMs: 1000 });
  // The watcher writes the Docker verdict only; the check result is the checker's.
  assert.deepEqual(i.docker, { state: "running", detail: "" });
  assert.equal(i.checkResult, null);
  const tcp = one(container({ env: ["SERVICE_CHECK_TCP=true", "SERVICE_CHECK_INTERVAL=15s"] }));
  assert.deepEqual(tcp.check, { tcp: true, intervalMs: 15000, timeoutMs: 2000 });
  const http = one(container({ env: ["SERVICE_CHECK_HTTP=/ping"] }));
  assert.deepEqual(http.check, { http: "/ping", intervalMs: 10000, timeoutMs: 2000 });
  const grpc = one(container({ labels: { "berth.check.grpc": "true" } }));
  assert.deepEqual(grpc.check, { grpc: true, intervalMs: 10000, timeoutMs: 2000 });
});

Deno.test("containerInstances() Docker verdict follows Docker health, pause and stop", async (t) => {
  const cases: [Fixture, string][] = [
    [{}, "running"],
    [{ health: "healthy" }, "healthy"],
    [{ health: "starting" }, "starting"],
    [{ health: "unhealthy" }, "unhealthy"],
    [{ paused: true }, "paused"],
  ];
  for (const [f, state] of cases) {
    await t.step(JSON.stringify(f), () => {
      assert.deepEqual(one(container(f)).docker, { state, detail: "" });
    });
  }
  await t.step("unhealthy carries the last check output, trimmed", () => {
    const c = container({ health: "unhealthy" });
    c.State!.Health!.Log = [{ ExitCode: 1, Output: "connection refused\n" }];
    assert.deepEqual(one(c).docker, { state: "unhealthy", detail: "connection refused" });
  });
  await t.step("stopping overrides everything", () => {
    const c = container({ health: "healthy" });
    const i = one(c, { ...OPTS, stopping: new Set([c.Id]) });
    assert.deepEqual(i.docker, { state: "stopping", detail: "" });
  });
  await t.step("an active check does not change the Docker verdict", () => {
    const i = one(container({ health: "starting", labels: { "berth.check.tcp": "true" } }));
    assert.deepEqual(i.docker, { state: "starting", detail: "" });
    assert.equal(i.checkResult, null);
  });
});

Deno.test("desiredInstances() sorts by id and keeps the first of duplicate ids", () => {
  const a = container({ name: "b", env: ["SERVICE_ID=same"] });
  const b = container({ name: "a", env: ["SERVICE_ID=same"] });
  const c = container({ name: "c" });
  const r = desiredInstances([c, a, b], OPTS);
  assert.deepEqual(r.instances.map((i) => [i.id, i.meta.container]), [
    ["h1:c:80", "c"],
    ["h1:same", "a"],
  ]);
  assert.equal(r.problems.length, 1);
  assert.equal(r.problems[0]!.container, "b");
});
