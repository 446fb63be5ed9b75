/**
 * Test fixtures of the Docker watcher's pure parts: a container as `docker inspect` shows it,
 * with only the fields under test set, and the desired options of node h1.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ContainerInfo } from "./container.ts";
import { containerInstances, type DesiredOptions } from "./desired.ts";

export const OPTS: DesiredOptions = { node: "h1", advertise: "10.0.0.5", internal: false };

export interface Fixture {
  name?: string;
  id?: string;
  image?: string;
  labels?: Record<string, string>;
  env?: string[];
  ports?: Record<string, { HostIp?: string; HostPort?: string }[] | null>;
  exposed?: string[];
  network?: string;
  ip?: string;
  health?: string;
  paused?: boolean;
}

/** A container as `docker inspect` shows it, with only the fields under test set. */
export function container(f: Fixture = {}): ContainerInfo {
  return {
    Id: f.id ?? "c0ffee" + (f.name ?? "web-1"),
    Name: "/" + (f.name ?? "web-1"),
    Config: {
      Image: f.image ?? "nginx:1.27",
      Labels: f.labels ?? {},
      Env: f.env ?? ["PATH=/bin"],
      ExposedPorts: Object.fromEntries((f.exposed ?? ["80/tcp"]).map((k) => [k, {}])),
    },
    State: {
      Status: f.paused ? "paused" : "running",
      Running: true,
      Paused: f.paused ?? false,
      Restarting: false,
      Health: f.health === undefined ? undefined : { Status: f.health, Log: [] },
    },
    HostConfig: { NetworkMode: f.network ?? "bridge" },
    NetworkSettings: {
      Ports: f.ports ?? { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "32768" }] },
      IPAddress: f.ip ?? "172.17.0.2",
      Networks: { bridge: { IPAddress: f.ip ?? "172.17.0.2" } },
    },
  };
}

export function one(c: ContainerInfo, o: DesiredOptions = OPTS) {
  const r = containerInstances(c, o);
  assert.equal(r.instances.length, 1, JSON.stringify(r));
  return r.instances[0]!;
}
