// Network-namespace "pods" (DESIGN.md, "Test pods on one machine"): one namespace holds a
// bridge, each pod a namespace joined to it by a veth pair, addresses from 10.250.0.0/16,
// no default route out. Processes run in a pod under a chosen uid, each in its own process
// group. Teardown is synchronous, so it also runs from process "exit".

import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { namespaces, removeNamespace, runPrefix } from "./namespaces.ts";
import { killGroup, sh } from "./system.ts";

/** Unprivileged uids with no passwd entry: one for apps, one for sidecars (Istio uses 1337). */
export const APP_UID = 15100;
export const PROXY_UID = 15137;
/** Istio's VIP range, routed into each pod's veth so connect() reaches the OUTPUT chain. */
export const VIP_CIDR = "240.240.0.0/16";
const POD_PREFIX_LEN = 16;
/** What a pod process gets for an environment: nothing of its parent's (no proxy variables). */
const BARE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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

export interface SpawnOptions {
  /** Run as this uid (and gid); default root. */
  uid?: number;
  env?: Record<string, string>;
}

/** The pod of `name` in the run named by `prefix` (for a process that did not build the network itself). */
export function podOf(prefix: string, name: string, ip: string): Pod {
  return { name, ns: `${prefix}${name}`, ip };
}

/** The argv prefix that runs a command in namespace `ns`, as `uid` when given (setpriv drops root before exec). */
export function inNamespace(ns: string, uid?: number): string[] {
  const drop = uid === undefined ? [] : ["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--"];
  return ["ip", "netns", "exec", ns, ...drop];
}

/** The environment of a pod process: a bare PATH and HOME plus `extra`. */
export function podEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: BARE_PATH, HOME: "/tmp", ...extra };
}

/** /etc/netns/<pod>/hosts, which `ip netns exec` bind-mounts over /etc/hosts for every process it starts. */
export function writeHosts(pod: Pod, entries: readonly (readonly [ip: string, name: string])[]): string {
  const file = `/etc/netns/${pod.ns}/hosts`;
  mkdirSync(`/etc/netns/${pod.ns}`, { recursive: true });
  const lines = ["127.0.0.1 localhost", `${pod.ip} ${pod.name}`, ...entries.map(([ip, name]) => `${ip} ${name}`)];
  writeFileSync(file, lines.join("\n") + "\n", { mode: 0o644 });
  return file;
}

/** Starts `cmd` in namespace `ns` in its own process group, with a bare environment. */
export function spawnIn(ns: string, o: SpawnOptions, cmd: string, args: readonly string[]): ChildProcess {
  const [ip, ...rest] = inNamespace(ns, o.uid);
  return spawn(ip!, [...rest, cmd, ...args], { detached: true, stdio: ["ignore", "pipe", "pipe"], env: podEnv(o.env) });
}

/** Runs `cmd` in namespace `ns` to completion, its process group killed after `timeoutMs`. */
export function execIn(ns: string, o: SpawnOptions, cmd: string, args: readonly string[], timeoutMs = 20_000): Promise<Exec> {
  return collect(spawnIn(ns, o, cmd, args), timeoutMs);
}

function collect(child: ChildProcess, timeoutMs: number): Promise<Exec> {
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

export interface PodNetworkOptions {
  /**
   * Tear down and exit on SIGINT/SIGTERM (default true, what a test wants). A caller that
   * must first let its children stop (the demo) handles the signals itself and calls teardown().
   */
  handleSignals?: boolean;
}

export class PodNetwork {
  readonly prefix = runPrefix();
  readonly bridgeNs = `${this.prefix}net`;
  readonly pods = new Map<string, Pod>();
  readonly #children = new Set<ChildProcess>();
  readonly #signals: boolean;
  #next = 0;
  #torn = false;
  readonly #onExit = () => this.teardown();
  readonly #onSignal = (signal: NodeJS.Signals) => {
    this.teardown();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };

  /** Makes the bridge namespace; teardown is hooked to process exit (and to SIGINT/SIGTERM unless told not to) at once. */
  constructor(o: PodNetworkOptions = {}) {
    this.#signals = o.handleSignals ?? true;
    process.on("exit", this.#onExit);
    if (this.#signals) {
      process.once("SIGINT", this.#onSignal);
      process.once("SIGTERM", this.#onSignal);
    }
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
    const pod = podOf(this.prefix, name, ip);
    // The bridge side's name lives only in the bridge namespace, so it never meets the host's.
    const peer = `veth${this.#next++}`;
    this.pods.set(name, pod);
    const { ns } = pod;
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

  writeHosts(pod: Pod, entries: readonly (readonly [ip: string, name: string])[]): void {
    writeHosts(pod, entries);
  }

  /** Starts `cmd` in the pod (undefined: the bridge namespace) in its own process group. */
  spawn(pod: Pod | undefined, o: SpawnOptions, cmd: string, args: string[]): ChildProcess {
    if (this.#torn) throw new Error("the pod network is torn down");
    const child = spawnIn(pod?.ns ?? this.bridgeNs, o, cmd, args);
    this.#children.add(child);
    child.once("exit", () => this.#children.delete(child));
    return child;
  }

  /** Runs `cmd` in the pod to completion, killed after `timeoutMs`. */
  exec(pod: Pod | undefined, o: SpawnOptions, cmd: string, args: string[], timeoutMs = 20_000): Promise<Exec> {
    return collect(this.spawn(pod, o, cmd, args), timeoutMs);
  }

  /** Kills every process started here, then deletes every namespace and hosts file. Idempotent. */
  teardown(): void {
    if (this.#torn) return;
    this.#torn = true;
    for (const child of this.#children) killGroup(child);
    for (const pod of this.pods.values()) removeNamespace(pod.ns);
    removeNamespace(this.bridgeNs);
    process.off("exit", this.#onExit);
    if (this.#signals) {
      process.off("SIGINT", this.#onSignal);
      process.off("SIGTERM", this.#onSignal);
    }
  }

  /** Namespaces of this run still present (empty after teardown). */
  leftovers(): string[] {
    return namespaces().filter((n) => n.startsWith(this.prefix));
  }
}
