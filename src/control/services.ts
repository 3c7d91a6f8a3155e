// Virtual IPs for services: each service name gets one stable IPv4 address from the
// service CIDR the first time it appears (a policy applied, a proxy registered), kept in the
// store so a restart changes nothing. Apps reach `payments` through a hosts entry naming its
// VIP; the pod's iptables rules send that connection to the sidecar, which routes by Host.

import { RemoraError } from "../core/errors.ts";
import type { ControlState } from "./store.ts";

/**
 * Istio's range for auto-allocated service addresses: class E (240.0.0.0/4) is reserved,
 * so no real host has one, and routers drop it, so a VIP never leaves the machine.
 */
export const DEFAULT_SERVICE_CIDR = "240.240.0.0/16";

export interface ServiceRecord {
  namespace: string;
  vip: string;
}

/** `GET /v1/services`, one entry per service. */
export interface ServiceView {
  service: string;
  namespace: string;
  vip: string;
  /** Registered proxies with an address (callable endpoints) right now. */
  endpoints: number;
}

export interface ServiceCidr {
  readonly text: string;
  /** First address as a 32-bit number. */
  readonly network: number;
  readonly size: number;
}

function ipToNumber(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return octets.reduce((n, o) => n * 256 + o, 0);
}

function numberToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

/** Parses --service-cidr; one sentence naming the flag when it is not a usable IPv4 range. */
export function parseServiceCidr(text: string): ServiceCidr {
  const [ip = "", bits = ""] = text.trim().split("/");
  const address = ipToNumber(ip);
  const prefix = /^\d{1,2}$/.test(bits) ? Number(bits) : NaN;
  // A /30 holds two usable addresses; anything smaller holds none once the network and
  // broadcast addresses are skipped.
  if (address === undefined || !(prefix >= 8 && prefix <= 30)) {
    throw new RemoraError("ERR_VIP", `--service-cidr "${text}" is not an IPv4 CIDR between /8 and /30 (e.g. ${DEFAULT_SERVICE_CIDR}).`);
  }
  const size = 2 ** (32 - prefix);
  const network = address - (address % size);
  if (network !== address) {
    throw new RemoraError("ERR_VIP", `--service-cidr "${text}" has host bits set; did you mean ${numberToIp(network)}/${prefix}?`);
  }
  return { text: `${ip}/${prefix}`, network, size };
}

/**
 * Gives every name in `wanted` a VIP unless it has one: the lowest free address of `cidr`
 * (network and broadcast addresses skipped, and any VIP already held, even one from an
 * earlier, different CIDR). Mutates `state.services`; answers the services newly assigned.
 */
export function assignVips(state: ControlState, wanted: readonly { service: string; namespace: string }[], cidr: ServiceCidr): string[] {
  const services = (state.services ??= {});
  const taken = new Set(Object.values(services).map((s) => s.vip));
  const added: string[] = [];
  let next = cidr.network + 1;
  const last = cidr.network + cidr.size - 2;
  for (const { service, namespace } of wanted) {
    if (services[service] !== undefined) continue;
    while (next <= last && taken.has(numberToIp(next))) next++;
    if (next > last) {
      throw new RemoraError("ERR_VIP", `--service-cidr ${cidr.text} has no free address left for service "${service}"; restart the control plane with a larger range.`);
    }
    const vip = numberToIp(next);
    taken.add(vip);
    services[service] = { namespace, vip };
    added.push(service);
  }
  return added;
}

/** Every service that should have a VIP: policy destinations and registered proxies' services. */
export function servicesInState(state: ControlState): { service: string; namespace: string }[] {
  const out = new Map<string, string>();
  for (const name of Object.keys(state.policies).sort()) out.set(name, "default");
  for (const p of Object.values(state.proxies).sort((a, b) => a.proxy.localeCompare(b.proxy))) out.set(p.service, p.namespace);
  return [...out].map(([service, namespace]) => ({ service, namespace }));
}

export function serviceViews(state: ControlState): ServiceView[] {
  const endpoints = new Map<string, number>();
  for (const p of Object.values(state.proxies)) if (p.address !== undefined) endpoints.set(p.service, (endpoints.get(p.service) ?? 0) + 1);
  return Object.entries(state.services ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([service, s]) => ({ service, namespace: s.namespace, vip: s.vip, endpoints: endpoints.get(service) ?? 0 }));
}

/** The snapshot's `services` section: what a sidecar needs to route a request whose Host is a VIP. */
export function snapshotServices(state: ControlState): Record<string, { vip: string }> {
  const out: Record<string, { vip: string }> = {};
  for (const [service, s] of Object.entries(state.services ?? {}).sort(([a], [b]) => a.localeCompare(b))) out[service] = { vip: s.vip };
  return out;
}
