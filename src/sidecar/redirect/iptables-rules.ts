// The iptables rules `remora init` installs in a pod's network namespace, as
// iptables-restore text for the nat table. Pure: the CLI runs the text, tests read it.
//
// The layout follows Istio's istio-iptables (ISTIO_OUTPUT, ISTIO_REDIRECT, ISTIO_INBOUND,
// ISTIO_IN_REDIRECT): own chains hold every rule, and one jump from each built-in chain
// leads into them, so re-applying only flushes and refills our chains, and removal is
// "delete two jumps, drop four chains". IPv4 only: test pods have no IPv6 addresses.

import { RemoraError } from "../../core/errors.ts";

export const CHAIN_OUTPUT = "REMORA_OUTPUT";
export const CHAIN_REDIRECT = "REMORA_REDIRECT";
export const CHAIN_INBOUND = "REMORA_INBOUND";
export const CHAIN_IN_REDIRECT = "REMORA_IN_REDIRECT";
export const CHAINS = [CHAIN_OUTPUT, CHAIN_REDIRECT, CHAIN_INBOUND, CHAIN_IN_REDIRECT] as const;

/** The service VIP range (the control plane's, and the pods' route); opaque ports on it reach the sidecar's VIP listeners. */
export const DEFAULT_VIP_CIDR = "240.240.0.0/16";

/** Istio's ports: outbound listener 15001, inbound listener 15006. */
export const DEFAULT_OUTBOUND_LISTENER_PORT = 15001;
export const DEFAULT_INBOUND_LISTENER_PORT = 15006;

/** The jumps from built-in chains into ours, as iptables-save prints them. */
export const JUMPS = [
  { chain: "OUTPUT", rule: `-p tcp -j ${CHAIN_OUTPUT}` },
  { chain: "PREROUTING", rule: `-p tcp -j ${CHAIN_INBOUND}` },
] as const;

export interface RedirectOptions {
  /** Traffic of this uid (the sidecar) is never redirected, or it would loop into itself. */
  proxyUid: number;
  /** TCP ports of the app; inbound connections to them go to the inbound listener. Empty: none. */
  inboundPorts: number[];
  /** Only outbound TCP to these ports is redirected; empty: all outbound TCP. */
  outboundPorts: number[];
  /** Outbound TCP to these IPv4 CIDRs leaves untouched. */
  excludeOutboundCidrs: string[];
  inboundListenerPort: number;
  outboundListenerPort: number;
  /**
   * Destination ports carried as opaque TCP (docs/protocols.md): connections to them on the
   * VIP range are not redirected, so they reach the sidecar's listener bound to VIP:port
   * through the local route init adds; the listener's address names the service.
   */
  opaquePorts: number[];
  /** Ports never proxied, either way (Istio's excludeOutboundPorts / excludeInboundPorts). */
  skipPorts: number[];
  vipCidr: string;
}

/** The flags of `remora init` as typed, before validation. */
export interface RedirectFlags {
  "proxy-uid"?: string | undefined;
  "inbound-ports"?: string | undefined;
  "outbound-ports"?: string | undefined;
  "exclude-outbound-cidrs"?: string | undefined;
  "inbound-listener-port"?: string | undefined;
  "outbound-listener-port"?: string | undefined;
  "opaque-ports"?: string | undefined;
  "skip-ports"?: string | undefined;
  "vip-cidr"?: string | undefined;
}

function invalid(message: string): never {
  throw new RemoraError("ERR_REDIRECT", message);
}

function port(flag: string, text: string): number {
  const t = text.trim();
  const n = Number(t);
  if (!/^\d+$/.test(t) || n < 1 || n > 65535) invalid(`--${flag} "${text}" is not a TCP port (1-65535)`);
  return n;
}

function portList(flag: string, text: string | undefined): number[] {
  if (text === undefined || text.trim() === "") return [];
  const ports = text.split(",").map((p) => port(flag, p));
  const dup = ports.find((p, i) => ports.indexOf(p) !== i);
  if (dup !== undefined) invalid(`--${flag} lists port ${dup} twice`);
  return ports;
}

/** "10.0.0.0/8" stays as is, a bare address becomes a /32; anything else is refused naming the flag. */
export function ipv4Cidr(flag: string, text: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(text.trim());
  const octets = m ? [m[1], m[2], m[3], m[4]].map(Number) : [];
  const prefix = m?.[5] === undefined ? 32 : Number(m[5]);
  if (!m || octets.some((o) => o > 255) || prefix > 32) invalid(`--${flag} "${text}" is not an IPv4 address or CIDR (e.g. 10.0.0.0/8)`);
  return `${octets.join(".")}/${prefix}`;
}

/** Validates `remora init`'s flags; each error is one sentence naming the flag. */
export function parseRedirectFlags(flags: RedirectFlags): RedirectOptions {
  const uidText = flags["proxy-uid"];
  if (uidText === undefined) invalid("--proxy-uid UID is required: the uid the sidecar runs as, whose traffic is never redirected");
  if (!/^\d+$/.test(uidText.trim()) || Number(uidText) > 4294967294) invalid(`--proxy-uid "${uidText}" is not a numeric uid`);
  if (flags["inbound-ports"] === undefined) invalid("--inbound-ports PORT[,PORT] is required: the app's ports (give \"\" for a pod that only calls out)");
  const inboundListenerPort = port("inbound-listener-port", flags["inbound-listener-port"] ?? String(DEFAULT_INBOUND_LISTENER_PORT));
  const outboundListenerPort = port("outbound-listener-port", flags["outbound-listener-port"] ?? String(DEFAULT_OUTBOUND_LISTENER_PORT));
  if (inboundListenerPort === outboundListenerPort) invalid(`--inbound-listener-port and --outbound-listener-port are both ${inboundListenerPort}; the two listeners need different ports`);
  const inboundPorts = portList("inbound-ports", flags["inbound-ports"]);
  for (const p of inboundPorts) {
    if (p === inboundListenerPort || p === outboundListenerPort) invalid(`--inbound-ports includes ${p}, which is a sidecar listener port, not an app port`);
  }
  const cidrs = (flags["exclude-outbound-cidrs"] ?? "").split(",").filter((c) => c.trim() !== "");
  const opaquePorts = portList("opaque-ports", flags["opaque-ports"]);
  const skipPorts = portList("skip-ports", flags["skip-ports"]);
  const both = opaquePorts.find((p) => skipPorts.includes(p));
  if (both !== undefined) invalid(`--opaque-ports and --skip-ports both list port ${both}; a port is either proxied as opaque TCP or not proxied`);
  for (const p of [...opaquePorts, ...skipPorts]) {
    if (p === inboundListenerPort || p === outboundListenerPort) invalid(`--opaque-ports and --skip-ports may not list ${p}, a sidecar listener port`);
  }
  const skippedApp = inboundPorts.find((p) => skipPorts.includes(p));
  if (skippedApp !== undefined) invalid(`--inbound-ports and --skip-ports both list port ${skippedApp}; drop it from one (skipped ports reach the app unproxied)`);
  return {
    opaquePorts,
    skipPorts,
    vipCidr: ipv4Cidr("vip-cidr", flags["vip-cidr"] ?? DEFAULT_VIP_CIDR),
    proxyUid: Number(uidText),
    inboundPorts,
    outboundPorts: portList("outbound-ports", flags["outbound-ports"]),
    excludeOutboundCidrs: cidrs.map((c) => ipv4Cidr("exclude-outbound-cidrs", c)),
    inboundListenerPort,
    outboundListenerPort,
  };
}

/** The rules inside our chains, in order (without the jumps into them). */
export function chainRules(o: RedirectOptions): string[] {
  const rules = [
    `-A ${CHAIN_REDIRECT} -p tcp -j REDIRECT --to-ports ${o.outboundListenerPort}`,
    `-A ${CHAIN_IN_REDIRECT} -p tcp -j REDIRECT --to-ports ${o.inboundListenerPort}`,
    ...o.inboundPorts.map((p) => `-A ${CHAIN_INBOUND} -p tcp --dport ${p} -j ${CHAIN_IN_REDIRECT}`),
    // The sidecar's own connections (to peers, to the control plane) must leave as they are.
    `-A ${CHAIN_OUTPUT} -m owner --uid-owner ${o.proxyUid} -j RETURN`,
    // Loopback: the sidecar's forward to the app, and anything the app talks to locally.
    `-A ${CHAIN_OUTPUT} -d 127.0.0.0/8 -j RETURN`,
    ...o.excludeOutboundCidrs.map((c) => `-A ${CHAIN_OUTPUT} -d ${c} -j RETURN`),
    ...o.skipPorts.map((p) => `-A ${CHAIN_OUTPUT} -p tcp --dport ${p} -j RETURN`),
    // Opaque ports on the VIP range stay as dialled: the local route delivers them to the
    // sidecar's listener on VIP:port, whose address names the service (no SO_ORIGINAL_DST).
    ...o.opaquePorts.map((p) => `-A ${CHAIN_OUTPUT} -d ${o.vipCidr} -p tcp --dport ${p} -j RETURN`),
  ];
  if (o.outboundPorts.length === 0) rules.push(`-A ${CHAIN_OUTPUT} -j ${CHAIN_REDIRECT}`);
  else rules.push(...o.outboundPorts.map((p) => `-A ${CHAIN_OUTPUT} -p tcp --dport ${p} -j ${CHAIN_REDIRECT}`));
  return rules;
}

/** A jump line from iptables-save, e.g. "-A OUTPUT -p tcp -j REMORA_OUTPUT". */
interface SavedJump {
  chain: string;
  rule: string;
}

/** Every rule in iptables-save text (nat table) that jumps from a built-in chain into one of ours. */
export function savedJumps(save: string): SavedJump[] {
  const ours = new Set<string>(CHAINS);
  const out: SavedJump[] = [];
  let nat = false;
  for (const line of save.split("\n")) {
    if (line.startsWith("*")) nat = line.trim() === "*nat";
    if (!nat) continue;
    const m = /^-A (\S+) (.*)$/.exec(line.trim());
    if (!m || ours.has(m[1]!)) continue;
    const target = /(?:^|\s)-j (\S+)/.exec(m[2]!)?.[1];
    if (target !== undefined && ours.has(target)) out.push({ chain: m[1]!, rule: m[2]! });
  }
  return out;
}

/** Our chains present in iptables-save text (nat table). */
export function savedChains(save: string): string[] {
  const ours = new Set<string>(CHAINS);
  const found: string[] = [];
  let nat = false;
  for (const line of save.split("\n")) {
    if (line.startsWith("*")) nat = line.trim() === "*nat";
    const m = nat ? /^:(\S+) /.exec(line) : null;
    if (m && ours.has(m[1]!)) found.push(m[1]!);
  }
  return found;
}

function sameRule(a: string, b: string): boolean {
  return a.trim().split(/\s+/).join(" ") === b.trim().split(/\s+/).join(" ");
}

/**
 * Input for `iptables-restore --noflush`: declares our chains (created if missing),
 * flushes and refills them, and appends a jump only where `currentSave` (iptables-save
 * -t nat of the namespace; "" for a fresh one) lacks it. Applying it any number of times
 * leaves one set of rules, and other tables' and chains' rules are never touched.
 */
export function applyScript(o: RedirectOptions, currentSave = ""): string {
  const present = savedJumps(currentSave);
  const jumps = JUMPS.filter((j) => !present.some((p) => p.chain === j.chain && sameRule(p.rule, j.rule)));
  return [
    "*nat",
    ...CHAINS.map((c) => `:${c} - [0:0]`),
    // Some iptables-restore versions keep an existing chain's rules under --noflush.
    ...CHAINS.map((c) => `-F ${c}`),
    ...chainRules(o),
    ...jumps.map((j) => `-A ${j.chain} ${j.rule}`),
    "COMMIT",
    "",
  ].join("\n");
}

/**
 * Input for `iptables-restore --noflush` that undoes applyScript: deletes every jump into
 * our chains found in `currentSave`, then flushes and deletes the chains that exist.
 * Undefined when nothing of ours is installed (removal is then a no-op).
 */
export function removeScript(currentSave: string): string | undefined {
  const jumps = savedJumps(currentSave);
  const chains = savedChains(currentSave);
  if (jumps.length === 0 && chains.length === 0) return undefined;
  return [
    "*nat",
    ...jumps.map((j) => `-D ${j.chain} ${j.rule}`),
    ...chains.map((c) => `-F ${c}`),
    ...chains.map((c) => `-X ${c}`),
    "COMMIT",
    "",
  ].join("\n");
}
