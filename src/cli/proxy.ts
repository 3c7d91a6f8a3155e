// `remora proxy --config FILE`: one sidecar from a static config file. The file and the
// certificates it names are watched: a valid change is applied in place, an invalid one
// is logged and the last good config keeps serving. `remora proxy --control URL ...`: the
// same sidecar enrolled with, and driven by, the control plane (proxy-control.ts).

import { stat } from "node:fs/promises";
import { createLogger } from "./log.ts";
import { parse, UsageError } from "./args.ts";
import { loadStaticConfig, type LoadedConfig } from "./load-config.ts";
import { startSidecar } from "../sidecar/sidecar.ts";
import { loadRuntime } from "../runtime/detect.ts";
import { systemClock } from "../core/system-clock.ts";
import { RemoraError } from "../core/errors.ts";
import { parseCertificatesPem, spiffeIdOf } from "../core/identity/certificate-info.ts";
import { parseSpiffeId } from "../core/identity/spiffe-id.ts";
import { readText } from "./files.ts";
import { parseDuration } from "../core/duration.ts";
import { PARENT_PID_ENV, watchParent } from "./parent-watch.ts";
import { createControlClient } from "../sidecar/control-client.ts";
import { createControlTransport } from "../sidecar/control/transport.ts";
import { createFailoverTransport } from "../sidecar/control/failover.ts";
import type { InboundMode } from "../runtime/types.ts";
import { tracesUrl } from "../sidecar/tracing/otlp-exporter.ts";
import { normalizeOnDemandArgs, onDemandFlags, type OnDemandFlags } from "./proxy-ondemand.ts";
import { createSubscriptions } from "../sidecar/control/subscriptions.ts";
import { limitFlags, limitFlagsUsage, limitsFromFlags } from "../sidecar/limits.ts";
import { mergeProtocols, protocolFlags, protocolFlagsUsage, protocolsFromFlags, type ProtocolSettings } from "../sidecar/protocols.ts";
import { drain, DEFAULT_DRAIN_DELAY_MS } from "../sidecar/drain.ts";
import { createProcessMemoryReader } from "../runtime/process-memory.ts";

/** Access lines are written in batches this far apart at most (src/cli/log.ts); 50 ms is below what a person tailing the log notices. */
const ACCESS_LOG_BATCH_MS = 50;

export const usage = `remora proxy --config FILE
remora proxy --control URL --ca ROOT.pem --token TOKEN --service NAME [--namespace default]
             [--app HOST:PORT] [--inbound ADDR] [--outbound ADDR] [--admin ADDR] [--mode STRICT]

Runs one sidecar: outbound listener (plain HTTP from the app), inbound listener (mTLS from
other sidecars, forwarded to the app), admin server (/ready /live /metrics /config /endpoints).

  --config FILE     static config (YAML); see README "Static configuration"
  --watch-interval  how often to check the config and certificate files for changes (default 2s)
  --otlp-endpoint URL  export spans as OTLP/HTTP JSON to this collector (both modes; docs/tracing.md)
  --access-log on|off  one JSON line per request on stdout (default on; both modes; wins over
                    the config file's access_log)

Control-plane mode:
  --control URL     the control plane, https://host:port (or REMORA_CONTROL); several replicas:
                    URL1,URL2 or the flag repeated; the sidecar fails over between them
  --ca ROOT.pem     the mesh root the control plane's certificate must chain to
  --token TOKEN     join token from \`remora token\` (or REMORA_TOKEN)
  --service NAME    the service this sidecar fronts; --namespace (default "default")
  --app HOST:PORT   the local app; without it there is no inbound listener (a pure client)
  --inbound ADDR    inbound listener (default 127.0.0.1:15006); --advertise ADDR registers another address
  --outbound ADDR   outbound listener (default 127.0.0.1:15001)
  --admin ADDR      admin server (default 127.0.0.1:15000)
  --mode MODE       inbound STRICT (default), PERMISSIVE or DISABLE
  --proxy-id ID     registry id (default <service>-<random>)
  --trust-domain TD default: the trust domain named in the --ca root
  --label K=V       an endpoint label for policy subsets (e.g. version=v2); repeatable
  --destinations A,B  destinations to watch from the start (or REMORA_DESTINATIONS); by default
                    the sidecar receives only these plus the names its app calls (discovered on
                    the first request), with incremental pushes
  --whole-mesh      receive the whole mesh's config instead (also --on-demand=false; a bare
                    --on-demand, the old opt-in, is accepted and changes nothing)
  --discovery-timeout D  how long a request to a new name waits for discovery (default 5s)
  --unwatch-after D stop watching a discovered name after D without a request (default 1h; 0: never)
  --drain-timeout D how long SIGTERM lets in-flight requests finish (default 5s)
  --drain-delay D   after SIGTERM, keep serving this long once deregistered, so callers drop
                    this endpoint before the listeners close (default 2s)

${limitFlagsUsage}

${protocolFlagsUsage}`;

const controlFlags = {
  control: { type: "string", multiple: true },
  ca: { type: "string" },
  token: { type: "string" },
  service: { type: "string" },
  namespace: { type: "string" },
  app: { type: "string" },
  inbound: { type: "string" },
  advertise: { type: "string" },
  outbound: { type: "string" },
  admin: { type: "string" },
  mode: { type: "string" },
  "proxy-id": { type: "string" },
  "trust-domain": { type: "string" },
  "otlp-endpoint": { type: "string" },
  "access-log": { type: "string" },
  "discovery-timeout": { type: "string" },
  "unwatch-after": { type: "string" },
  "drain-timeout": { type: "string" },
  "drain-delay": { type: "string" },
} as const;

export async function proxyCommand(argv: string[]): Promise<number> {
  const { values: all } = parse("proxy", normalizeOnDemandArgs(argv), {
    config: { type: "string" },
    "watch-interval": { type: "string" },
    help: { type: "boolean" },
    label: { type: "string", multiple: true },
    "on-demand": { type: "boolean" },
    "whole-mesh": { type: "boolean" },
    destinations: { type: "string", multiple: true },
    ...controlFlags,
    ...limitFlags,
    ...protocolFlags,
  });
  const { label, "on-demand": onDemandFlag, "whole-mesh": wholeMesh, destinations, ...values } = all;
  const limits = limitsFromFlags(values);
  const protocols = protocolsFromFlags(values);
  if (values.help) return console.log(usage), 0;
  const control = values.control?.join(",") ?? process.env.REMORA_CONTROL;
  if (values.config && values.control) throw new UsageError("remora proxy: give either --config FILE or --control URL, not both");
  if (!values.config && control) return controlProxy({ ...values, control }, labelFlags(label), onDemandFlags({ onDemand: onDemandFlag, wholeMesh, destinations, discoveryTimeout: values["discovery-timeout"], unwatchAfter: values["unwatch-after"] }), limits, protocols);
  if (onDemandFlag || wholeMesh || destinations || values["discovery-timeout"] || values["unwatch-after"]) throw new UsageError("remora proxy: --on-demand, --whole-mesh, --destinations, --discovery-timeout and --unwatch-after go with --control");
  if (label !== undefined) throw new UsageError("remora proxy: --label goes with --control; in a --config file, set labels on the endpoints");
  if (!values.config) throw new UsageError("remora proxy: --config FILE or --control URL is required; see remora proxy --help");
  const path = values.config;
  const watch = values["watch-interval"] ?? "2s";
  let intervalMs: number;
  try {
    // A zero interval would poll the files in a busy loop.
    intervalMs = Math.max(100, parseDuration(watch));
  } catch {
    throw new UsageError(`remora proxy: --watch-interval "${watch}" is not a duration (e.g. 2s, 500ms)`);
  }
  const accessFlag = accessLogFlag(values["access-log"]);
  let loaded: LoadedConfig = await loadStaticConfig(path);
  // Read per access line, so a reload that changes access_log applies at once.
  const log = createLogger({ service: "remora-sidecar" }, process.stdout, { accessBatchMs: ACCESS_LOG_BATCH_MS, access: () => accessFlag ?? loaded.accessLog });
  const runtime = await loadRuntime();
  // Flags win over the file's limits:; both apply when the listeners open (a reload does not change them).
  const sidecar = await startSidecar({ ...loaded.settings, limits: { ...loaded.settings.limits, ...limits }, protocols: mergeProtocols(loaded.settings.protocols, protocols), ...tracingFlag(values["otlp-endpoint"]) }, { runtime, clock: systemClock, random: Math.random, log, onShutdown: drainSelf, memory: createProcessMemoryReader() });
  followParent(log);

  const mtimes = async (files: string[]) => (await Promise.all(files.map((f) => stat(f).then((s) => s.mtimeMs, () => 0)))).join(",");
  let seen = await mtimes(loaded.files);
  let reloading = false;
  const reload = async (why: string) => {
    if (reloading) return;
    reloading = true;
    try {
      const next = await loadStaticConfig(path);
      if (next.settings.identity.certPem !== loaded.settings.identity.certPem || next.settings.identity.bundlePem !== loaded.settings.identity.bundlePem) {
        sidecar.setIdentity(next.settings.identity);
      }
      sidecar.applyMesh(next.settings.mesh);
      loaded = next;
    } catch (e) {
      log.error({ file: path, reason: why, error: (e as Error).message }, "config rejected; keeping the last good config");
    } finally {
      seen = await mtimes(loaded.files);
      reloading = false;
    }
  };
  const timer = setInterval(async () => {
    const now = await mtimes(loaded.files);
    if (now !== seen) await reload("file changed");
  }, intervalMs);
  process.on("SIGHUP", () => void reload("SIGHUP"));

  await new Promise<void>((done) => {
    const stop = async (signal: string) => {
      log.info({ signal, drain_ms: loaded.settings.drainMs }, "draining");
      clearInterval(timer);
      await sidecar.close();
      done();
    };
    process.once("SIGTERM", () => void stop("SIGTERM"));
    process.once("SIGINT", () => void stop("SIGINT"));
  });
  return 0;
}

/** --access-log on|off; undefined when not given. */
export function accessLogFlag(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === "on") return true;
  if (value === "off") return false;
  throw new UsageError(`remora proxy: --access-log "${value}" is neither on nor off`);
}

/** --otlp-endpoint URL as sidecar settings (it wins over the config file's tracing field). */
function tracingFlag(url: string | undefined): { tracing?: { otlpEndpoint: string } } {
  return url === undefined ? {} : { tracing: { otlpEndpoint: tracesUrl(url, "--otlp-endpoint") } };
}

type ControlValues = { [K in Exclude<keyof typeof controlFlags, "control">]?: string | undefined } & { control: string };

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

function addressFlag(flag: string, value: string | undefined, fallback: string): string {
  const a = value ?? fallback;
  if (!HOST_PORT.test(a)) throw new UsageError(`remora proxy: --${flag} "${a}" is not host:port`);
  return a;
}

/** Control-plane mode: enroll first (a listener needs a certificate), start the sidecar, then watch. */
/** `--label version=v2 --label zone=a` as a label map. */
export function labelFlags(list: readonly string[] | undefined): Record<string, string> | undefined {
  if (list === undefined || list.length === 0) return undefined;
  const labels: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`remora proxy: --label "${item}" is not KEY=VALUE (e.g. --label version=v2)`);
    labels[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return labels;
}

async function controlProxy(values: ControlValues, labels?: Record<string, string>, onDemand?: OnDemandFlags, limits?: ReturnType<typeof limitsFromFlags>, protocols?: ProtocolSettings): Promise<number> {
  const urls = values.control.split(",").map((u) => u.trim()).filter((u) => u !== "").map((text) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      url = new URL("invalid:");
    }
    if (url.protocol !== "https:" || url.port === "" || (url.pathname !== "/" && url.pathname !== "")) {
      throw new UsageError(`remora proxy: --control "${text}" is not the control plane's https://host:port URL (e.g. https://127.0.0.1:15010)`);
    }
    return url;
  });
  if (urls.length === 0) throw new UsageError(`remora proxy: --control "${values.control}" names no control plane; give https://host:port (e.g. https://127.0.0.1:15010)`);
  if (!values.ca) throw new UsageError("remora proxy: --ca ROOT.pem is required with --control (the root the control plane's certificate chains to)");
  const token = values.token ?? process.env.REMORA_TOKEN;
  if (!token) throw new UsageError("remora proxy: --token TOKEN (or REMORA_TOKEN) is required with --control; get one with `remora token --service NAME`");
  if (!values.service) throw new UsageError("remora proxy: --service NAME is required with --control");
  const namespace = values.namespace ?? "default";
  const mode = (values.mode ?? "STRICT").toUpperCase();
  if (mode !== "STRICT" && mode !== "PERMISSIVE" && mode !== "DISABLE") throw new UsageError(`remora proxy: --mode "${values.mode}" is not STRICT, PERMISSIVE or DISABLE`);
  const app = values.app === undefined ? undefined : addressFlag("app", values.app, "");
  const inboundListen = addressFlag("inbound", values.inbound, "127.0.0.1:15006");
  const outboundListen = addressFlag("outbound", values.outbound, "127.0.0.1:15001");
  const adminListen = addressFlag("admin", values.admin, "127.0.0.1:15000");
  const advertise = values.advertise === undefined ? undefined : addressFlag("advertise", values.advertise, "");
  const tracing = tracingFlag(values["otlp-endpoint"]);
  const drainMs = durationFlag("drain-timeout", values["drain-timeout"], 5000);
  const drainDelayMs = durationFlag("drain-delay", values["drain-delay"], DEFAULT_DRAIN_DELAY_MS);

  const caPem = await readText(values.ca, "--ca");
  let rootId: string | undefined;
  try {
    const [root] = parseCertificatesPem(caPem, `--ca ${values.ca}`);
    if (!root) throw new Error("no CERTIFICATE block");
    rootId = spiffeIdOf(root);
  } catch (e) {
    throw new RemoraError("ERR_PEM", `--ca ${values.ca} is not a PEM root certificate: ${(e as Error).message}`);
  }
  const trustDomain = values["trust-domain"] ?? (rootId ? parseSpiffeId(rootId).trustDomain : "cluster.local");
  const proxyId = values["proxy-id"] ?? `${values.service}-${crypto.randomUUID().slice(0, 8)}`;

  const accessLog = accessLogFlag(values["access-log"]) ?? true;
  const log = createLogger({ service: "remora-sidecar", proxy: proxyId }, process.stdout, { accessBatchMs: ACCESS_LOG_BATCH_MS, access: () => accessLog });
  const runtime = await loadRuntime();
  let sidecar: Awaited<ReturnType<typeof startSidecar>> | undefined;
  const subscriptions = onDemand && createSubscriptions({ clock: systemClock, declared: onDemand.declared, timeoutMs: onDemand.timeoutMs, unwatchAfterMs: onDemand.unwatchAfterMs });
  const client = createControlClient({
    ...(subscriptions ? { onDemand: subscriptions } : {}),
    transport: (...args) => control.transport(...args),
    clock: systemClock,
    random: Math.random,
    log,
    token,
    trustDomain,
    namespace,
    service: values.service,
    proxyId,
    registration: () => ({
      ...(sidecar?.inbound ? { address: advertise ?? sidecar.inbound.address } : {}),
      ...(sidecar ? { admin: sidecar.admin.address } : {}),
      runtime: `${runtime.name} ${runtime.version}`,
      ...(labels ? { labels } : {}),
    }),
  });
  const replicas = urls.map((url) => ({ url: url.origin, ...createControlTransport({ runtime, url, caPem, trustDomain, material: () => client.material(), clock: systemClock }) }));
  const control = { ...createFailoverTransport(replicas, log), close: () => replicas.forEach((r) => r.close()) };

  log.info({ control: replicas.map((r) => r.url).join(","), service: values.service, namespace, config: onDemand ? "on-demand" : "whole-mesh", ...(onDemand ? { destinations: onDemand.declared } : {}) }, "enrolling with the control plane");
  const material = await client.enroll();
  sidecar = await startSidecar(
    {
      identity: material,
      trustDomain,
      ...(app ? { inbound: { listen: inboundListen, app, mode: mode as InboundMode } } : {}),
      outbound: { listen: outboundListen },
      admin: { listen: adminListen },
      mesh: { policies: [], endpoints: {}, version: "none" },
      drainMs,
      ...(limits ? { limits } : {}),
      ...(protocols ? { protocols } : {}),
      service: values.service,
      awaitConfig: true,
      configMode: subscriptions ? "on-demand" : "whole-mesh",
      ...tracing,
    },
    { runtime, clock: systemClock, random: Math.random, log, onShutdown: drainSelf, memory: createProcessMemoryReader(), ...(subscriptions ? { discover: subscriptions.discover } : {}) },
  );
  client.start(sidecar);
  followParent(log);

  await new Promise<void>((done) => {
    // Deregister first, keep serving while callers drop us, then close (src/sidecar/drain.ts).
    const stop = async (signal: string) => {
      await drain({
        signal,
        clock: systemClock,
        log,
        drainMs,
        propagationMs: drainDelayMs,
        deregister: async () => {
          await client.close();
          control.close();
        },
        close: () => sidecar!.close(),
      });
      done();
    };
    process.once("SIGTERM", () => void stop("SIGTERM"));
    process.once("SIGINT", () => void stop("SIGINT"));
  });
  return 0;
}

function durationFlag(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  let ms = Number.NaN;
  try {
    ms = parseDuration(text);
  } catch {
    // reported below
  }
  if (!(ms >= 0)) throw new UsageError(`remora proxy: --${flag} "${text}" is not a duration (e.g. 5s, 500ms)`);
  return ms;
}

/** Drain when the remora command that started this sidecar dies without stopping it (src/cli/parent-watch.ts). */
function followParent(log: { warn(o: object, m: string): void }): void {
  watchParent(() => {
    log.warn({ parent: process.env[PARENT_PID_ENV] }, "the remora process that started this sidecar is gone; draining");
    drainSelf();
  });
}

/** Admin POST /shutdown takes the same path as SIGTERM: one drain, whoever asks. */
const drainSelf = () => process.kill(process.pid, "SIGTERM");
