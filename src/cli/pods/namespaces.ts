// Network namespaces of pod runs, named rmr-<pid>-<pod>: listing them, removing one with
// every process in it, telling whether this machine allows them, and sweeping what runs
// that died before their teardown left behind.

import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { alive, missingCommand, quiet, sleepSync } from "./system.ts";

/** Namespaces (and temp dirs) of one run are named rmr-<pid>-…; a run whose pid is gone left them behind. */
const RUN_NAME = /^rmr-(\d+)-/;

/** The name prefix of this process's run. */
export function runPrefix(pid: number = process.pid): string {
  return `rmr-${pid}-`;
}

export function namespaces(): string[] {
  const r = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  return (r.stdout ?? "").split("\n").map((l) => l.split(" ")[0] ?? "").filter((n) => n !== "");
}

/** Pids of the processes inside a namespace. */
export function pidsIn(ns: string): number[] {
  return (spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout ?? "").split(/\s+/).filter((p) => /^\d+$/.test(p)).map(Number);
}

/**
 * Kills every process in a namespace, waits (bounded) for them to go, then deletes it and its
 * /etc/netns dir. The veths and iptables rules inside go with the namespace.
 */
export function removeNamespace(ns: string): void {
  for (let round = 0; round < 20; round++) {
    const pids = pidsIn(ns);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    sleepSync(100);
  }
  quiet("ip", ["netns", "del", ns]);
  rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
}

/** Why pods cannot be made here (not root, a tool missing, namespaces forbidden), or undefined when they can. */
export function podsUnavailable(): string | undefined {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return "network-namespace pods need root (ip netns, veth pairs, iptables rules)";
  }
  const missing = missingCommand([
    ["ip", "-V", "iproute2"],
    ["iptables-restore", "--version", "iptables"],
    ["setpriv", "--version", "util-linux"],
    ["curl", "--version", "curl"],
  ]);
  if (missing) return missing;
  const probe = `${runPrefix()}probe`;
  const r = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    return `this machine forbids network namespaces (ip netns add: ${(r.error?.message ?? r.stderr).trim()})`;
  }
  removeNamespace(probe);
  return undefined;
}

function deadRun(name: string): boolean {
  const pid = RUN_NAME.exec(name)?.[1];
  return pid !== undefined && Number(pid) !== process.pid && !alive(Number(pid));
}

/** Removes namespaces (with their processes) and temp dirs left by earlier runs that died before their teardown. */
export function sweepStale(): string[] {
  const stale = namespaces().filter(deadRun);
  for (const ns of stale) removeNamespace(ns);
  for (const d of readdirSync(tmpdir()).filter(deadRun)) rmSync(join(tmpdir(), d), { recursive: true, force: true });
  return stale;
}

/** A temp dir named for the run of `pid` (world-readable: apps and sidecars run under their own uids). */
export function runDir(pid: number = process.pid): string {
  const dir = mkdtempSync(join(tmpdir(), runPrefix(pid)));
  chmodSync(dir, 0o755);
  return dir;
}
