// `remora init`: installs (or with --remove, removes) the iptables rules that redirect a
// pod's TCP traffic into its sidecar, in the network namespace it runs in. The rules come
// from src/sidecar/redirect/iptables-rules.ts; this file only runs iptables-save/-restore.

import { spawnSync } from "node:child_process";
import { isRemoraError, RemoraError } from "../core/errors.ts";
import { applyScript, CHAINS, DEFAULT_VIP_CIDR, ipv4Cidr, JUMPS, parseRedirectFlags, removeScript, type RedirectOptions } from "../sidecar/redirect/iptables-rules.ts";
import { hasVipRoute, vipRouteApply, vipRouteRemove } from "../sidecar/redirect/vip-route.ts";
import { readFileSync, writeFileSync } from "node:fs";
import { parse, UsageError } from "./args.ts";

const usage = `Usage: remora init --proxy-uid UID --inbound-ports PORT[,PORT] [options]
       remora init --remove

Writes iptables rules (nat table, chains REMORA_*) in this network namespace: outbound TCP
goes to the sidecar's outbound listener except the sidecar's own traffic (--proxy-uid) and
loopback; inbound TCP to the app's ports goes to the inbound listener. Idempotent.

  --proxy-uid UID                 uid the sidecar runs as (its traffic is never redirected)
  --inbound-ports P[,P]           the app's ports ("" for a pod that only calls out)
  --outbound-ports P[,P]          redirect only outbound TCP to these ports (default: all)
  --exclude-outbound-cidrs C[,C]  leave outbound TCP to these IPv4 CIDRs alone
  --inbound-listener-port PORT    default 15006
  --outbound-listener-port PORT   default 15001
  --opaque-ports P[,P]            destination ports carried as opaque TCP (PostgreSQL 5432, MySQL 3306 …):
                                  not redirected on the VIP range, which becomes a local route
                                  (ip route replace local --vip-cidr dev lo) so the sidecar's
                                  VIP:port listeners receive them; give the sidecar the same list
  --skip-ports P[,P]              ports never proxied (outbound connections to them leave as they are)
  --vip-cidr CIDR                 the service VIP range (default ${DEFAULT_VIP_CIDR})
  --dry-run                       print the iptables-restore input and change nothing
  --remove                        delete the jumps and chains remora init installed`;

const NOT_ROOT = "remora init must run as root (it writes iptables rules in this network namespace)";

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], input?: string): Run {
  const r = spawnSync(command, args, { input: input ?? "", encoding: "utf8" });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new RemoraError("ERR_REDIRECT", `${command} was not found on PATH; install the iptables package (e.g. apt-get install iptables).`);
    throw new RemoraError("ERR_REDIRECT", `cannot run ${command}: ${r.error.message}.`);
  }
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function failed(command: string, r: Run): RemoraError {
  const why = r.stderr.trim().split("\n")[0] ?? `exit status ${r.status}`;
  if (/permission denied|you must be root/i.test(why)) return new RemoraError("ERR_REDIRECT", `${command} was refused (permission denied); ${NOT_ROOT}.`);
  return new RemoraError("ERR_REDIRECT", `${command} failed: ${why.replace(/\.$/, "")}.`);
}

function currentNat(): string {
  const r = run("iptables-save", ["-t", "nat"]);
  if (r.status !== 0) throw failed("iptables-save -t nat", r);
  return r.stdout;
}

function restore(script: string): void {
  const r = run("iptables-restore", ["--noflush"], script);
  if (r.status !== 0) throw failed("iptables-restore --noflush", r);
}

function summary(o: RedirectOptions): string {
  const out = o.outboundPorts.length === 0 ? "all outbound TCP" : `outbound TCP to port${o.outboundPorts.length > 1 ? "s" : ""} ${o.outboundPorts.join(",")}`;
  const except = ["uid " + o.proxyUid, "127.0.0.0/8", ...o.excludeOutboundCidrs].join(", ");
  const inbound = o.inboundPorts.length === 0 ? "no inbound ports" : `inbound TCP to ${o.inboundPorts.join(",")} -> :${o.inboundListenerPort}`;
  const skip = o.skipPorts.length === 0 ? "" : `; ports ${o.skipPorts.join(",")} not proxied`;
  const opaque = o.opaquePorts.length === 0 ? "" : `; opaque ports ${o.opaquePorts.join(",")} on ${o.vipCidr} reach the sidecar's VIP listeners (local route)`;
  return `remora init: ${out} -> :${o.outboundListenerPort} (except ${except}); ${inbound}${skip}${opaque}`;
}

export async function initCommand(argv: string[]): Promise<number> {
  const { values } = parse("init", argv, {
    "proxy-uid": { type: "string" },
    "inbound-ports": { type: "string" },
    "outbound-ports": { type: "string" },
    "exclude-outbound-cidrs": { type: "string" },
    "inbound-listener-port": { type: "string" },
    "outbound-listener-port": { type: "string" },
    "opaque-ports": { type: "string" },
    "skip-ports": { type: "string" },
    "vip-cidr": { type: "string" },
    "dry-run": { type: "boolean" },
    remove: { type: "boolean" },
    help: { type: "boolean" },
  });
  if (values.help) return console.log(usage), 0;

  if (values.remove) {
    if (values["dry-run"]) {
      // Without reading the namespace's rules, show what removing a full install does.
      const full = ["*nat", ...CHAINS.map((c) => `:${c} - [0:0]`), ...JUMPS.map((j) => `-A ${j.chain} ${j.rule}`), "COMMIT"].join("\n");
      process.stdout.write(removeScript(full) ?? "");
      return 0;
    }
    if (!isRoot()) return console.error(NOT_ROOT), 1;
    removeVipRoute(values["vip-cidr"]);
    const script = removeScript(currentNat());
    if (script === undefined) {
      console.log("remora init --remove: no remora rules in this network namespace; nothing to do");
      return 0;
    }
    restore(script);
    console.log("remora init --remove: jumps and REMORA_* chains deleted");
    return 0;
  }

  let options: RedirectOptions;
  try {
    options = parseRedirectFlags(values);
  } catch (e) {
    if (isRemoraError(e, "ERR_REDIRECT")) throw new UsageError(`remora init: ${e.message}`);
    throw e;
  }
  const route = vipRouteApply(options.vipCidr, options.opaquePorts);
  if (values["dry-run"]) {
    process.stdout.write(applyScript(options));
    for (const c of route.commands) process.stdout.write(`# then: ${c.join(" ")}\n`);
    return 0;
  }
  if (!isRoot()) return console.error(NOT_ROOT), 1;
  restore(applyScript(options, currentNat()));
  for (const c of route.commands) {
    const r = run(c[0]!, c.slice(1));
    if (r.status !== 0) throw failed(c.join(" "), r);
  }
  if (route.unprivilegedPortStart !== undefined) lowerUnprivilegedPorts(route.unprivilegedPortStart);
  console.log(summary(options));
  return 0;
}

/** Undoes the local VIP route when present (a namespace set up without --opaque-ports has none). */
function removeVipRoute(cidrFlag: string | undefined): void {
  let cidr: string;
  try {
    cidr = ipv4Cidr("vip-cidr", cidrFlag ?? DEFAULT_VIP_CIDR);
  } catch (e) {
    throw new UsageError(`remora init: ${(e as Error).message}`);
  }
  const shown = run("ip", ["route", "show", "table", "local"]);
  if (shown.status !== 0 || !hasVipRoute(shown.stdout, cidr)) return;
  const [cmd, ...args] = vipRouteRemove(cidr);
  const r = run(cmd!, args);
  if (r.status !== 0) throw failed([cmd, ...args].join(" "), r);
  console.log(`remora init --remove: local route for ${cidr} deleted`);
}

/** The sidecar binds VIP:port for opaque ports below 1024 without privilege (this network namespace only). */
function lowerUnprivilegedPorts(port: number): void {
  const file = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
  try {
    if (Number(readFileSync(file, "utf8").trim()) > port) writeFileSync(file, String(port));
  } catch (e) {
    throw new RemoraError("ERR_REDIRECT", `cannot lower ${file} to ${port} for the opaque ports: ${(e as Error).message}.`);
  }
}

/** Checked first so the sentence is the same whatever iptables' backend would print. */
function isRoot(): boolean {
  return typeof process.getuid !== "function" || process.getuid() === 0;
}
