/**
 * Shared test data: one instance spec with every field filled, overridden per test.
 *
 * @module
 */
import type { InstanceSpec } from "../src/store/mod.ts";

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
    status: "passing",
    output: "",
    containerId: "abc",
    httpHosts: [],
    httpPath: null,
    tcpPort: null,
    check: null,
    ...over,
  };
}
