// The demo's mesh, built from the real pieces: a control plane on a temporary data
// directory, two payments replicas and their sidecars, the orders sidecar, each sidecar a
// `remora proxy --control …` child enrolled by join token, an OTLP collector, and every
// sidecar's event feed. Where the pieces run (loopback, or network-namespace pods) is a
// Topology; everything else is shared. Everything started is registered for cleanup first.

import { request } from "node:http";
import { join } from "node:path";
import { RemoraError } from "../../core/errors.ts";
import { startControlServer, type ControlServer } from "../../control/server.ts";
import { connectControl, type ControlClient } from "../control-client.ts";
import type { CallResult } from "../demo-apps.ts";
import { spawnRemora, type Child, type SpawnOptions } from "./children.ts";
import { startCollector, type Collector } from "./collector.ts";
import { followFeed, type Feed, type FeedEvent } from "./feed.ts";
import type { Cast } from "./narration.ts";
import type { Output } from "./output.ts";

export const REPLICAS = ["B1", "B2"] as const;
export type Replica = (typeof REPLICAS)[number];
export type SidecarName = Replica | "orders";

/** Runs registered stop functions once, newest first, whoever asks first (the end, Ctrl-C). */
export class Cleanup {
  readonly #stack: { what: string; fn: () => Promise<unknown> | unknown }[] = [];
  #running: Promise<void> | undefined;

  defer(what: string, fn: () => Promise<unknown> | unknown): void {
    this.#stack.push({ what, fn });
  }

  get started(): boolean {
    return this.#running !== undefined;
  }

  run(onStep: (what: string) => void = () => {}): Promise<void> {
    this.#running ??= (async () => {
      while (this.#stack.length) {
        const { what, fn } = this.#stack.pop()!;
        onStep(what);
        try {
          await fn();
        } catch {
          // keep going: the rest must still be stopped
        }
      }
    })();
    return this.#running;
  }
}

/** A payments replica's app, wherever it runs; it knows nothing of remora. */
export interface ReplicaApp {
  readonly name: Replica;
  /** Where its sidecar forwards to. */
  readonly address: string;
  /** Whether it resets connections (as last set). */
  readonly flapping: boolean;
  /** Resolves once the app itself reports the change. */
  setFlapping(on: boolean): Promise<void>;
  /** Requests that reached the app (reset or answered) and connections it reset, by its own count. */
  counts(): Promise<{ hits: number; resets: number }>;
  close(): Promise<void>;
}

/** The orders app: one plain `POST http://payments/charge` per charge(). */
export interface OrdersClient {
  charge(): Promise<CallResult>;
  close(): void;
}

/** Where and how the demo's pieces run: on loopback, or in network-namespace pods. */
export interface Topology {
  /** "on loopback", "in network-namespace pods": the first line of the narration says it. */
  readonly where: string;
  /** The control plane's listen address (it runs in-process in the demo either way). */
  readonly controlListen: string;
  /** The host the OTLP collector listens on. */
  readonly collectorHost: string;
  /** The temporary directory for everything the demo writes, removed by `cleanup`. */
  makeDir(cleanup: Cleanup): Promise<string>;
  /** The trust bundle file the sidecars are given (--ca), readable by them. */
  trustBundle(dataDir: string, dir: string): Promise<string>;
  startApp(name: Replica, flapping: boolean, cleanup: Cleanup): Promise<ReplicaApp>;
  /** Listener flags and spawn options for one sidecar (with the join token in its environment). */
  sidecar(name: SidecarName, app: ReplicaApp | undefined, token: string): Promise<SidecarLaunch>;
  ordersClient(orders: DemoSidecar): OrdersClient;
  /** Names for addresses besides the sidecars' inbound listeners, for the cast. */
  names(mesh: Omit<DemoMesh, "cast">): [address: string, name: string][];
  /** What the APP column of the proxies table says for orders. */
  readonly ordersApp: string;
  /** How the first call reaches sidecar A, for step 1's line. */
  callPath(orders: DemoSidecar): string;
  /** Once every proxy has the config, before the first call (pods: the hosts file with the VIPs). */
  prepare?(mesh: DemoMesh, out: Output): Promise<void>;
  /** After the first call: what the network saw of it (pods: the iptables counters). */
  afterFirstCall?(mesh: DemoMesh, out: Output): Promise<void>;
  /** --keep: how to look around. */
  explore(mesh: DemoMesh, out: Output): void;
}

export interface SidecarLaunch {
  /** `remora proxy` flags for its listeners and app. */
  args: string[];
  spawn: SpawnOptions;
  /** The inbound address it registers, when not the one it listens on (--advertise). */
  advertise?: string;
}

export interface DemoSidecar {
  name: SidecarName;
  proxyId: string;
  child: Child;
  outbound: string;
  inbound?: string;
  admin: string;
}

export interface DemoMesh {
  topology: Topology;
  dir: string;
  dataDir: string;
  control: ControlServer;
  controlUrl: string;
  api: ControlClient;
  /** The control plane's log lines (identity issued, policies applied, …). */
  controlLog: { msg: string; obj: Record<string, unknown> }[];
  collector: Collector;
  /** The trust bundle file given to the sidecars. */
  ca: string;
  apps: Record<Replica, ReplicaApp>;
  sidecars: Record<SidecarName, DemoSidecar>;
  feeds: Record<SidecarName, Feed>;
  cast: Cast;
}

export interface MeshOptions {
  topology: Topology;
  flapping: ReadonlySet<string>;
  /** The policy document (YAML) applied before any sidecar starts. */
  policyYaml: string;
  out: Output;
  cleanup: Cleanup;
  /** Every event from every feed, as it arrives (for --json). */
  onEvent: (sidecar: SidecarName, e: FeedEvent) => void;
}

const READY_TIMEOUT_MS = 45_000;

export async function startMesh(o: MeshOptions): Promise<DemoMesh> {
  const { out, cleanup, topology } = o;
  const dir = await topology.makeDir(cleanup);
  const dataDir = join(dir, "control");

  // In-process: it is ready in milliseconds with nothing to spawn, and the demo still
  // talks to it only through its HTTPS API, as `remora get` does.
  out.progress("control plane: creating the CA and starting…");
  const controlLog: DemoMesh["controlLog"] = [];
  const logger = {
    info: (obj: object, msg: string) => void controlLog.push({ msg, obj: obj as Record<string, unknown> }),
    warn: (obj: object, msg: string) => void controlLog.push({ msg, obj: obj as Record<string, unknown> }),
  };
  const control = await startControlServer({ dataDir, listen: topology.controlListen, trustDomain: "cluster.local", certTtlMs: 3_600_000, logger });
  cleanup.defer("stop the control plane", () => control.close());
  const controlUrl = `https://${control.address}`;
  const api = await connectControl({ control: controlUrl, data: dataDir });
  cleanup.defer("close the admin client", () => api.close());
  out.say(`  control plane  ${controlUrl}, data directory ${dataDir} (CA, join-token key, admin token)`, { control: controlUrl, data: dataDir });
  const ca = await topology.trustBundle(dataDir, dir);

  const collector = await startCollector(topology.collectorHost);
  cleanup.defer("stop the OTLP collector", () => collector.close());
  out.say(`  collector      ${collector.url}/v1/traces (OTLP/HTTP JSON, in-process)`, { collector: collector.url });

  const applied = (await api.request("PUT", "/v1/policies?source=payments.yaml", { text: o.policyYaml, contentType: "application/yaml" })) as { applied: string[]; version: string };
  out.say(`  policy         applied ${applied.applied.join(", ")} through the control plane (config version ${applied.version})`, { applied });

  const apps = {} as Record<Replica, ReplicaApp>;
  await Promise.all(
    REPLICAS.map(async (name) => {
      out.progress(`payments apps: starting ${name}…`);
      apps[name] = await topology.startApp(name, o.flapping.has(name), cleanup);
    }),
  );

  // Tokens first (one API call each), then all three sidecars start at once.
  // Sidecar A declares what its app calls, so its config holds payments before the first call
  // (on-demand config: a sidecar receives only what its app calls or declares).
  const plan: { name: SidecarName; service: string; proxyId: string; app?: ReplicaApp; calls?: string }[] = [
    { name: "B1", service: "payments", proxyId: "payments-b1", app: apps.B1 },
    { name: "B2", service: "payments", proxyId: "payments-b2", app: apps.B2 },
    { name: "orders", service: "orders", proxyId: "orders-a", calls: "payments" },
  ];
  // Stopped together: each drains faster once its callers' pooled connections are gone.
  const children: Child[] = [];
  cleanup.defer("stop the sidecars (SIGTERM to each process group, SIGKILL after 3s)", () => Promise.all(children.map((c) => c.stop(3000))));
  const state = new Map<SidecarName, string>(plan.map((p) => [p.name, "starting"]));
  const showProgress = () => out.progress(`sidecars: ${plan.map((p) => `${p.name} ${state.get(p.name)}`).join(", ")}`);
  const started = await Promise.all(
    plan.map(async (p) => {
      const { token } = (await api.request("POST", "/v1/tokens", { json: { service: p.service, namespace: "default", ttl: "10m" } })) as { token: string };
      const launch = await topology.sidecar(p.name, p.app, token);
      const args = ["proxy", "--control", controlUrl, "--ca", ca, "--service", p.service, "--proxy-id", p.proxyId, "--otlp-endpoint", collector.url, ...(p.calls ? ["--destinations", p.calls] : []), ...launch.args];
      const child = spawnRemora(
        p.name,
        args,
        (line) => {
          if (line.msg === "enrolling with the control plane") state.set(p.name, "enrolling");
          if (line.msg === "sidecar ready") state.set(p.name, "waiting for config");
          if (line.msg === "config applied") state.set(p.name, `config ${line.version}`);
          showProgress();
        },
        launch.spawn,
      );
      children.push(child);
      showProgress();
      const ready = await child.waitForLog("sidecar ready", READY_TIMEOUT_MS);
      if (!ready) {
        throw new RemoraError("ERR_CONTROL", `the ${p.name} sidecar (remora proxy, pid ${child.pid}) did not become ready within ${READY_TIMEOUT_MS / 1000}s: ${child.tail().split("\n").slice(-3).join(" ") || "no output"}`);
      }
      const s: DemoSidecar = {
        name: p.name,
        proxyId: p.proxyId,
        child,
        outbound: String(ready.outbound),
        admin: String(ready.admin),
        ...(launch.advertise !== undefined ? { inbound: launch.advertise } : typeof ready.inbound === "string" ? { inbound: ready.inbound } : {}),
      };
      return s;
    }),
  );
  const sidecars = Object.fromEntries(started.map((s) => [s.name, s])) as Record<SidecarName, DemoSidecar>;

  const feeds = {} as Record<SidecarName, Feed>;
  for (const s of started) {
    const feed = await followFeed(s.name, s.admin, (e) => o.onEvent(s.name, e));
    cleanup.defer(`close the ${s.name} event feed`, () => feed.close());
    feeds[s.name] = feed;
  }

  const partial = { topology, dir, dataDir, control, controlUrl, api, controlLog, collector, ca, apps, sidecars, feeds };
  const names = new Map<string, string>(topology.names(partial));
  for (const r of REPLICAS) names.set(sidecars[r].inbound ?? "", r);
  const cast: Cast = {
    label: (a) => (a === undefined ? "?" : names.has(a) ? `${names.get(a)} (${a})` : a),
    short: (a) => (a === undefined ? "?" : (names.get(a) ?? a)),
  };
  return { ...partial, cast };
}

export interface ProxyRow {
  proxy: string;
  service: string;
  identity: string;
  address?: string;
  admin?: string;
  runtime?: string;
  config_version: string | null;
  status: string;
  error: string | null;
  config_mode?: string;
  destinations?: number;
}

export async function proxies(mesh: DemoMesh): Promise<ProxyRow[]> {
  return (await mesh.api.request("GET", "/v1/proxies")) as ProxyRow[];
}

/** Polls the control plane until `ok(rows)` holds; answers the rows, or undefined on time out. */
export async function untilProxies(mesh: DemoMesh, ok: (rows: ProxyRow[]) => boolean, timeoutMs: number, progress: (rows: ProxyRow[]) => void): Promise<ProxyRow[] | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await proxies(mesh);
    if (ok(rows)) return rows;
    progress(rows);
    if (Date.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** GET a sidecar admin path as JSON, on a connection of its own that closes after (no idle socket delays a drain). */
export function adminJson<T>(s: DemoSidecar, path: string): Promise<T> {
  const i = s.admin.lastIndexOf(":");
  return new Promise((ok, fail) => {
    const req = request({ host: s.admin.slice(0, i), port: Number(s.admin.slice(i + 1)), path, agent: false, timeout: 10_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => {
        if (res.statusCode !== 200) return fail(new Error(`GET http://${s.admin}${path} answered ${res.statusCode}`));
        try {
          ok(JSON.parse(body) as T);
        } catch (e) {
          fail(e as Error);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`GET http://${s.admin}${path} timed out`)));
    req.on("error", fail);
    req.end();
  });
}
