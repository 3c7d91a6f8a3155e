// The routing half of opaque TCP with transparent redirection (docs/protocols.md): `remora
// init --opaque-ports` makes the service VIP range local to the pod, so the sidecar can
// bind a listener on each VIP:port and a connection's local address names its service.
// Pure: argv lists the CLI runs, tests read.

export interface VipRoutePlan {
  /** Commands to run in order (argv, first element the program). */
  commands: string[][];
  /** Ports below 1024 need this sysctl lowered in the pod's netns for an unprivileged sidecar to bind them. */
  unprivilegedPortStart?: number;
}

/** `ip route replace local CIDR dev lo`: idempotent; the local table wins over the pod's VIP route to eth0. */
export function vipRouteApply(vipCidr: string, opaquePorts: readonly number[]): VipRoutePlan {
  if (opaquePorts.length === 0) return { commands: [] };
  const low = Math.min(...opaquePorts);
  return {
    commands: [["ip", "route", "replace", "local", vipCidr, "dev", "lo", "table", "local"]],
    ...(low < 1024 ? { unprivilegedPortStart: low } : {}),
  };
}

/** Whether `ip route show table local` output holds our route for `vipCidr`. */
export function hasVipRoute(showLocal: string, vipCidr: string): boolean {
  return showLocal.split("\n").some((l) => `${l.trim()} `.startsWith(`local ${vipCidr} `) && /\bdev lo\b/.test(l));
}

export function vipRouteRemove(vipCidr: string): string[] {
  return ["ip", "route", "del", "local", vipCidr, "dev", "lo", "table", "local"];
}
