// Network-namespace "pods" for end-to-end tests (DESIGN.md, "Test pods on one machine"):
// one namespace holds a bridge, each pod a namespace joined to it by a veth pair, addresses
// from 10.250.0.0/16, no default route out. Processes run in a pod under a chosen uid, each
// in its own process group. Teardown is synchronous, so it also runs from process "exit".

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The pinned Node (the machine's own may be older than remora supports). */
export const NODE = fileURLToPath(new URL("../../../node_modules/node/bin/node", import.meta.url));
export const REMORA = fileURLToPath(new URL("../../../bin/remora.js", import.meta.url));
/** Unprivileged uids with no passwd entry: one for apps, one for sidecars (Istio uses 1337). */
export const APP_UID = 15100;
export const PROXY_UID = 15137;
/** Istio's VIP range, routed into each pod's veth so connect() reaches the OUTPUT chain. */
export const VIP_CIDR = "240.240.0.0/16";
const POD_PREFIX_LEN = 16;

/** Namespaces of one run are named rmr-<pid>-<pod>; a run whose pid is gone left them behind. */
const RUN_NAME = /^rmr-(\d+)-/;

export interface Pod {
  /** Short name, e.g. "orders". */
  name: string;
  /** Network namespace name, e.g. "rmr-4242-orders". */
  ns: string;
  ip: string;
}

export interface Exec {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; throws one sentence with its stderr when it fails. */
export function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", input: input ?? "", timeout: 30_000 });
  if (r.error || r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${(r.error?.message ?? r.stderr).trim() || `exit ${r.status}`}`);
  }
  return r.stdout;
}

function quiet(cmd: string, args: string[]): void {
  spawnSync(cmd, args, { stdio: "ignore", timeout: 30_000 });
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Running, or stopped: a zombie (killed, not yet reaped) counts as gone. */
export function alive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
}

function namespaces(): string[] {
  const r = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  return (r.stdout ?? "").split("\n").map((l) => l.split(" ")[0] ?? "").filter((n) => n !== "");
}

/** Kills every process in a namespace, waits (bounded) for them to go, then deletes it and its /etc/netns dir. */
function removeNamespace(ns: string): void {
  for (let round = 0; round < 20; round++) {
    const pids = (spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout ?? "").split(/\s+/).filter((p) => /^\d+$/.test(p));
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // already gone
      }
    }
    sleepSync(100);
  }
  quiet("ip", ["netns", "del", ns]);
  rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
}

/** Why pods cannot be made here (not root, no namespaces allowed), or undefined when they can. */
export function podsUnavailable(): string | undefined {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return "end-to-end pods need root (ip netns, veth, iptables); run the e2e tier as root or in CI";
  }
  const probe = `rmr-${process.pid}-probe`;
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

/** A temp dir named for this run (world-readable: apps and sidecars run under their own uids). */
export function runDir(): string {
  const dir = mkdtempSync(join(tmpdir(), `rmr-${process.pid}-`));
  chmodSync(dir, 0o755);
  return dir;
}

export interface SpawnOptions {
  /** Run as this uid (and gid); default root. */
  uid?: number;
  env?: Record<string, string>;
}

export class PodNetwork {
  readonly prefix = `rmr-${process.pid}-`;
  readonly bridgeNs = `${this.prefix}net`;
  readonly pods = new Map<string, Pod>();
  readonly #children = new Set<ChildProcess>();
  #next = 0;
  #torn = false;
  readonly #onExit = () => this.teardown();
  readonly #onSignal = (signal: NodeJS.Signals) => {
    this.teardown();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };

  /** Makes the bridge namespace; teardown is hooked to process exit and SIGINT/SIGTERM at once. */
  constructor() {
    process.on("exit", this.#onExit);
    process.once("SIGINT", this.#onSignal);
    process.once("SIGTERM", this.#onSignal);
    try {
      sh("ip", ["netns", "add", this.bridgeNs]);
      sh("ip", ["-n", this.bridgeNs, "link", "set", "lo", "up"]);
      sh("ip", ["-n", this.bridgeNs, "link", "add", "br0", "type", "bridge"]);
      sh("ip", ["-n", this.bridgeNs, "link", "set", "br0", "up"]);
    } catch (e) {
      this.teardown();
      throw e;
    }
  }

  /** A pod: its namespace, a veth to the bridge, `ip`/16, lo up, and a route for the VIP range only. */
  addPod(name: string, ip: string): Pod {
    const ns = `${this.prefix}${name}`;
    // The bridge side's name lives only in the bridge namespace, so it never meets the host's.
    const peer = `veth${this.#next++}`;
    const pod: Pod = { name, ns, ip };
    this.pods.set(name, pod);
    sh("ip", ["netns", "add", ns]);
    sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
    sh("ip", ["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", this.bridgeNs]);
    sh("ip", ["-n", ns, "addr", "add", `${ip}/${POD_PREFIX_LEN}`, "dev", "eth0"]);
    sh("ip", ["-n", ns, "link", "set", "eth0", "up"]);
    sh("ip", ["-n", this.bridgeNs, "link", "set", peer, "master", "br0", "up"]);
    sh("ip", ["-n", ns, "route", "add", VIP_CIDR, "dev", "eth0"]);
    return pod;
  }

  pod(name: string): Pod {
    const p = this.pods.get(name);
    if (!p) throw new Error(`no pod "${name}"`);
    return p;
  }

  /** /etc/netns/<pod>/hosts, which `ip netns exec` bind-mounts over /etc/hosts for every process it starts. */
  writeHosts(pod: Pod, entries: readonly (readonly [ip: string, name: string])[]): void {
    mkdirSync(`/etc/netns/${pod.ns}`, { recursive: true });
    const lines = ["127.0.0.1 localhost", `${pod.ip} ${pod.name}`, ...entries.map(([ip, name]) => `${ip} ${name}`)];
    writeFileSync(`/etc/netns/${pod.ns}/hosts`, lines.join("\n") + "\n", { mode: 0o644 });
  }

  /** Starts `cmd` in the pod (undefined: the bridge namespace) in its own process group. */
  spawn(pod: Pod | undefined, o: SpawnOptions, cmd: string, args: string[]): ChildProcess {
    if (this.#torn) throw new Error("the pod network is torn down");
    const drop = o.uid === undefined ? [] : ["setpriv", `--reuid=${o.uid}`, `--regid=${o.uid}`, "--clear-groups", "--"];
    const child = spawn("ip", ["netns", "exec", pod?.ns ?? this.bridgeNs, ...drop, cmd, ...args], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      // Nothing from the test's environment (no proxy variables): the app sees a bare pod.
      env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/tmp", ...o.env },
    });
    this.#children.add(child);
    child.once("exit", () => this.#children.delete(child));
    return child;
  }

  /** Runs `cmd` in the pod to completion, killed after `timeoutMs`. */
  exec(pod: Pod | undefined, o: SpawnOptions, cmd: string, args: string[], timeoutMs = 20_000): Promise<Exec> {
    const child = this.spawn(pod, o, cmd, args);
    return new Promise((resolve, reject) => {
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (c) => (stdout += c));
      child.stderr!.on("data", (c) => (stderr += c));
      const timer = setTimeout(() => killGroup(child), timeoutMs);
      child.once("error", reject);
      child.once("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Kills every process started here, then deletes every namespace and hosts file. Idempotent. */
  teardown(): void {
    if (this.#torn) return;
    this.#torn = true;
    for (const child of this.#children) killGroup(child);
    for (const pod of this.pods.values()) removeNamespace(pod.ns);
    removeNamespace(this.bridgeNs);
    process.off("exit", this.#onExit);
    process.off("SIGINT", this.#onSignal);
    process.off("SIGTERM", this.#onSignal);
  }

  /** Namespaces of this run still present (empty after teardown). */
  leftovers(): string[] {
    return namespaces().filter((n) => n.startsWith(this.prefix));
  }
}

/** SIGKILL to the child's whole process group (it was started detached, as a group leader). */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is gone
  }
}
