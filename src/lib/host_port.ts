/**
 * `host:port` addresses as flags, the API and the cluster exchange them: `127.0.0.1:8300`,
 * `[::1]:53` (brackets are stripped from the host), `localhost:8500` (read as 127.0.0.1). A leaf
 * module: imports nothing from berth.
 *
 * @module
 */

import { isIP } from "node:net";

/** The port of a cluster address (`--bind`, `--join`, `berth join`) given without one. */
export const CLUSTER_PORT = 8300;

/** A parsed `host:port`: `host` is an IP address, IPv6 without brackets. */
export interface HostPort {
  host: string;
  port: number;
}

/** Whether `s` is an IPv4 or IPv6 address (no brackets, no port). */
export function isIp(s: string): boolean {
  return isIP(s) !== 0;
}

/**
 * Parses `host:port` or `[v6]:port`; the port may be left out when `defaultPort` is given.
 * Throws an Error saying what is wrong.
 */
export function parseHostPort(s: string, defaultPort?: number): HostPort {
  let host: string;
  let portText: string | undefined;
  const v6 = /^\[([^\]]*)\](?::(.*))?$/.exec(s);
  if (v6) {
    host = v6[1]!;
    portText = v6[2];
    if (!isIP(host) || !host.includes(":")) {
      throw new Error(`${JSON.stringify(host)} in brackets is not an IPv6 address`);
    }
  } else {
    const colons = s.split(":").length - 1;
    if (colons > 1) {
      // A bare IPv6 address: its port cannot be told apart, so none is taken.
      host = s;
    } else {
      const i = s.lastIndexOf(":");
      host = i < 0 ? s : s.slice(0, i);
      portText = i < 0 ? undefined : s.slice(i + 1);
    }
  }
  if (host === "localhost") host = "127.0.0.1";
  if (!isIp(host)) throw new Error(`${JSON.stringify(host)} is not an IP address`);
  if (portText === undefined) {
    if (defaultPort === undefined) throw new Error("missing :port");
    return { host, port: defaultPort };
  }
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) {
    throw new Error(`port ${JSON.stringify(portText)} is not in 1..65535`);
  }
  return { host, port };
}

/** The inverse of parseHostPort(): `127.0.0.1:8300`, `[::1]:53`. */
export function formatHostPort(a: HostPort): string {
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
