// "host:port" strings as they appear in policies and endpoints, IPv6 written "[::1]:15006".

import { RemoraError } from "../../core/errors.ts";

export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(text: string, what: string): HostPort {
  const bracketed = /^\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]:(\d+)$/.exec(text);
  const plain = bracketed ? null : /^([^:\s]*):(\d+)$/.exec(text);
  const match = bracketed ?? plain;
  const port = match ? Number(match[2]) : NaN;
  if (!match || !Number.isInteger(port) || port > 65535) {
    throw new RemoraError("ERR_CONFIG_INVALID", `${what} "${text}" is not a "host:port" address (write IPv6 as "[::1]:15006").`);
  }
  // An empty host (":15001") means every interface, as in Envoy's and Go's listen syntax.
  return { host: match[1] || "0.0.0.0", port };
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
