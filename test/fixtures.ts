/**
 * Shared test data: one instance spec with every field filled, overridden per test: a Docker
 * instance (running, no check); `apiInstanceSpec` is one registered through the API;
 * `registeredCheck` a TTL check named `check <id>`, critical until it reports.
 *
 * @module
 */
import type { InstanceSpec, RegisteredCheck } from "../src/store/mod.ts";

export function instanceSpec(over: Partial<InstanceSpec> = {}): InstanceSpec {
  return {
    id: "n1:web-1:80",
    service: "web",
    node: "n1",
    address: "10.0.0.1",
    port: 32768,
    tags: ["v1"],
    meta: { version: "1" },
    weight: 1,
    containerId: "abc",
    httpHosts: [],
    httpPath: null,
    tcpPort: null,
    check: null,
    docker: { state: "running", detail: "" },
    checkResult: null,
    ...over,
  };
}

/** An instance registered through the API (no container, no Docker verdict), overridden. */
export function apiInstanceSpec(over: Partial<InstanceSpec> = {}): InstanceSpec {
  return instanceSpec({ containerId: null, docker: null, ...over });
}

export function registeredCheck(id: string, over: Partial<RegisteredCheck> = {}): RegisteredCheck {
  return {
    id,
    name: `check ${id}`,
    notes: "",
    kind: "ttl",
    target: "",
    ttlMs: 10_000,
    intervalMs: 0,
    timeoutMs: 0,
    deregisterCriticalAfterMs: 0,
    status: "critical",
    output: "",
    ...over,
  };
}
