import assert from "node:assert/strict";
import { type HealthSources, instanceHealth, type Verdict } from "./health.ts";
import type { CheckStatus, DockerState, NodeStatus } from "./types.ts";

const CHECK = { http: "/health", intervalMs: 1000, timeoutMs: 100 };

/** Node liveness: the node's status → its verdict. */
const NODES: [NodeStatus | undefined, Verdict][] = [
  ["alive", { status: "passing", output: "" }],
  [undefined, { status: "passing", output: "" }], // a node the store does not know
  ["down", { status: "critical", output: "node n1 is down" }],
];

/** Docker verdict: the instance's `docker` → its verdict (null: no container). */
const DOCKERS: [DockerState | null, Verdict | null][] = [
  [null, null],
  ["running", { status: "passing", output: "" }],
  ["healthy", { status: "passing", output: "" }],
  ["starting", { status: "critical", output: "docker health: starting" }],
  ["unhealthy", { status: "critical", output: "docker health: unhealthy (exit 1)" }],
  ["paused", { status: "critical", output: "container paused" }],
  ["restarting", { status: "critical", output: "container restarting" }],
  ["stopping", { status: "critical", output: "container being stopped" }],
];

/** Check source: definition and stored result → its verdict (null: no check source). */
const CHECKS: [string, Pick<HealthSources, "check" | "checkResult">, Verdict | null][] = [
  ["none", { check: null, checkResult: null }, null],
  ["awaiting", { check: CHECK, checkResult: null }, {
    status: "critical",
    output: "awaiting first check",
  }],
  ["passing", { check: CHECK, checkResult: { status: "passing", output: "200 OK" } }, {
    status: "passing",
    output: "200 OK",
  }],
  ["warning", { check: CHECK, checkResult: { status: "warning", output: "429" } }, {
    status: "warning",
    output: "429",
  }],
  ["critical", { check: CHECK, checkResult: { status: "critical", output: "500" } }, {
    status: "critical",
    output: "500",
  }],
  ["reported by an API registrant", {
    check: null,
    checkResult: { status: "warning", output: "disk 91%" },
  }, { status: "warning", output: "disk 91%" }],
];

const ORDER: CheckStatus[] = ["passing", "warning", "critical"];

Deno.test("instanceHealth() derives each source's verdict, the worst status and its reason", async (t) => {
  for (const [nodeStatus, node] of NODES) {
    for (const [state, docker] of DOCKERS) {
      for (const [checkName, check, checkVerdict] of CHECKS) {
        const name = `node ${nodeStatus}, docker ${state}, check ${checkName}`;
        await t.step(name, () => {
          const i: HealthSources = {
            node: "n1",
            containerId: state === null ? null : "c1",
            docker: state === null
              ? null
              : { state, detail: state === "unhealthy" ? "exit 1" : "" },
            ...check,
          };
          const h = instanceHealth(i, nodeStatus);
          assert.deepEqual(h.node, node);
          assert.deepEqual(h.docker, docker);
          assert.deepEqual(h.check, checkVerdict);
          // Worst of the sources present; the reason is the first non-empty output among the
          // sources with that status, in the order node, Docker, check.
          const present = [node, docker, checkVerdict].filter((v) => v !== null);
          const worst = ORDER[Math.max(...present.map((v) => ORDER.indexOf(v.status)))]!;
          assert.equal(h.status, worst);
          const reason = present.find((v) => v.status === worst && v.output !== "");
          assert.equal(h.output, reason?.output ?? "");
          assert.equal(h.served, worst === "passing");
        });
      }
    }
  }
});

Deno.test("instanceHealth() examples: what a user sees", async (t) => {
  const docker = (state: DockerState) => ({ containerId: "c1", docker: { state, detail: "" } });
  const api = { containerId: null, docker: null };
  const cases: [string, HealthSources, NodeStatus, CheckStatus, string][] = [
    [
      "a live API instance without checks is passing with nothing to say",
      { node: "n1", ...api, check: null, checkResult: null },
      "alive",
      "passing",
      "",
    ],
    [
      "a down node wins over a passing check",
      {
        node: "n2",
        ...docker("running"),
        check: CHECK,
        checkResult: { status: "passing", output: "HTTP GET /health: 200 OK" },
      },
      "down",
      "critical",
      "node n2 is down",
    ],
    [
      "a paused container wins over a passing check",
      {
        node: "n1",
        ...docker("paused"),
        check: CHECK,
        checkResult: { status: "passing", output: "ok" },
      },
      "alive",
      "critical",
      "container paused",
    ],
    [
      "a failing check is shown behind a container Docker finds fine",
      {
        node: "n1",
        ...docker("healthy"),
        check: CHECK,
        checkResult: { status: "critical", output: "HTTP GET /health: 500" },
      },
      "alive",
      "critical",
      "HTTP GET /health: 500",
    ],
    [
      "critical beats warning whatever the order of sources",
      {
        node: "n1",
        ...api,
        check: null,
        checkResult: { status: "warning", output: "slow" },
      },
      "down",
      "critical",
      "node n1 is down",
    ],
  ];
  for (const [name, i, nodeStatus, status, output] of cases) {
    await t.step(name, () => {
      const h = instanceHealth(i, nodeStatus);
      assert.deepEqual([h.status, h.output, h.served], [status, output, status === "passing"]);
    });
  }
});
