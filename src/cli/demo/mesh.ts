// The demo's mesh, built from the real pieces: a control plane on a temporary data
// directory, two payments replicas and their sidecars, the orders sidecar, each sidecar a
// `remora proxy --control … --token …` child enrolled by join token, an OTLP collector,
// and every sidecar's event feed. Everything started is registered for cleanup first.

import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RemoraError } from "../../core/errors.ts";
import { startControlServer, type ControlServer } from "../../control/server.ts";
import { ROOT_CERT_FILE } from "../../control/data-dir.ts";
import { connectControl, type ControlClient } from "../control-client.ts";
import { startPaymentsApp, type PaymentsApp } from "../demo-apps.ts";
import { spawnRemora, type Child } from "./children.ts";
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

export interface DemoSidecar {
  name: SidecarName;
  proxyId: string;
  child: Child;
  outbound: string;
  inbound?: string;
  admin: string;
}

export interface DemoMesh {
  dir: string;
  dataDir: string;
  control: ControlServer;
  controlUrl: string;
  api: ControlClient;
  /** The control plane's log lines (identity issued, policies applied, …). */
  controlLog: { msg: string; obj: Record<string, unknown> }[];
  collector: Collector;
  apps: Record<Replica, PaymentsApp>;
  sidecars: Record<SidecarName, DemoSidecar>;
  feeds: Record<SidecarName, Feed>;
  cast: Cast;
}

export interface MeshOptions {
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
  const { out, cleanup } = o;
  const dir = await mkdtemp(join(tmpdir(), "remora-demo-"));
  cleanup.defer(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  const dataDir = join(dir, "control");

  // In-process: it is ready in milliseconds with nothing to spawn, and the demo still
  // talks to it only through its HTTPS API, as `remora get` does.
  out.progress("control plane: creating the CA and starting…");
  const controlLog: DemoMesh["controlLog"] = [];
  const logger = {
    info: (obj: object, msg: string) => void controlLog.push({ msg, obj: obj as Record<string, unknown> }),
    warn: (obj: object, msg: string) => void controlLog.push({ msg, obj: obj as Record<string, unknown> }),
  };
  const control = await startControlServer({ dataDir, listen: "127.0.0.1:0", trustDomain: "cluster.local", certTtlMs: 3_600_000, logger });
  cleanup.defer("stop the control plane", () => control.close());
  const controlUrl = `https://${control.address}`;
  const api = await connectControl({ control: controlUrl, data: dataDir });
  cleanup.defer("close the admin client", () => api.close());
  out.say(`  control plane  ${controlUrl}, data directory ${dataDir} (CA, join-token key, admin token)`, { control: controlUrl, data: dataDir });

  const collector = await startCollector();
  cleanup.defer("stop the OTLP collector", () => collector.close());
  out.say(`  collector      ${collector.url}/v1/traces (OTLP/HTTP JSON, in-process)`, { collector: collector.url });

  const applied = (await api.request("PUT", "/v1/policies?source=payments.yaml", { text: o.policyYaml, contentType: "application/yaml" })) as { applied: string[]; version: string };
  out.say(`  policy         applied ${applied.applied.join(", ")} through the control plane (config version ${applied.version})`, { applied });

  const apps = {} as Record<Replica, PaymentsApp>;
  for (const name of REPLICAS) {
    const app = await startPaymentsApp(name, o.flapping.has(name));
    cleanup.defer(`stop payments app ${name}`, () => app.close());
    apps[name] = app;
  }

  // Tokens first (one API call each), then all three sidecars start at once.
  const plan: { name: SidecarName; service: string; proxyId: string; app?: string }[] = [
    { name: "B1", service: "payments", proxyId: "payments-b1", app: apps.B1.address },
    { name: "B2", service: "payments", proxyId: "payments-b2", app: apps.B2.address },
    { name: "orders", service: "orders", proxyId: "orders-a" },
  ];
  // Stopped together: each drains faster once its callers' pooled connections are gone.
  const children: Child[] = [];
  cleanup.defer("stop the sidecars (SIGTERM to each process group, SIGKILL after 3s)", () => Promise.all(children.map((c) => c.stop(3000))));
  const state = new Map<SidecarName, string>(plan.map((p) => [p.name, "starting"]));
  const showProgress = () => out.progress(`sidecars: ${plan.map((p) => `${p.name} ${state.get(p.name)}`).join(", ")}`);
  const started = await Promise.all(
    plan.map(async (p) => {
      const { token } = (await api.request("POST", "/v1/tokens", { json: { service: p.service, namespace: "default", ttl: "10m" } })) as { token: string };
      const args = ["proxy", "--control", controlUrl, "--ca", join(dataDir, ROOT_CERT_FILE), "--token", token, "--service", p.service, "--proxy-id", p.proxyId];
      args.push("--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--otlp-endpoint", collector.url);
      if (p.app) args.push("--app", p.app, "--inbound", "127.0.0.1:0");
      const child = spawnRemora(p.name, args, (line) => {
        if (line.msg === "enrolling with the control plane") state.set(p.name, "enrolling");
        if (line.msg === "sidecar ready") state.set(p.name, "waiting for config");
        if (line.msg === "config applied") state.set(p.name, `config ${line.version}`);
        showProgress();
      });
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
        ...(typeof ready.inbound === "string" ? { inbound: ready.inbound } : {}),
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

  const names = new Map<string, string>();
  for (const r of REPLICAS) {
    names.set(sidecars[r].inbound ?? "", r);
    names.set(apps[r].address, `${r}'s app`);
  }
  const cast: Cast = {
    label: (a) => (a === undefined ? "?" : names.has(a) ? `${names.get(a)} (${a})` : a),
    short: (a) => (a === undefined ? "?" : (names.get(a) ?? a)),
  };
  return { dir, dataDir, control, controlUrl, api, controlLog, collector, apps, sidecars, feeds, cast };
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
