// The remora path: an orders sidecar (outbound, plain HTTP in) and a payments sidecar
// (inbound, mTLS in, forwards to the app), both `remora proxy --config FILE` from static
// configs, run under Node, Bun or Deno.

import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startProcess, type BenchProcess } from "../support/processes.ts";
import type { BenchEnv, PathHandle } from "./path.ts";

export type RemoraRuntime = "node" | "bun" | "deno";

/** The command line that runs bin/remora.js under `runtime`. */
export function remoraCommand(root: string, runtime: RemoraRuntime): { command: string; args: string[] } {
  const remora = join(root, "bin/remora.js");
  if (runtime === "node") return { command: process.execPath, args: [remora] };
  if (runtime === "bun") return { command: join(root, "node_modules/.bin/bun"), args: [remora] };
  return { command: join(root, "node_modules/.bin/deno"), args: ["run", "-A", remora] };
}

const identity = (certs: string, service: string) =>
  `identity: { cert: ${join(certs, `${service}.pem`)}, key: ${join(certs, `${service}-key.pem`)}, bundle: ${join(certs, "root.pem")} }\n`;

export interface SidecarOptions {
  env: BenchEnv;
  runtime: RemoraRuntime;
  name: string;
  service: string;
  /** The local app, for a sidecar with an inbound listener. */
  app?: string;
  /** Outbound endpoints and policies, as YAML lines below `endpoints:` / `policies:`. */
  extraYaml?: string;
  /** Flags for the runtime itself, before the script (e.g. node's --cpu-prof). */
  runtimeFlags?: string[];
  /** Run this executable (a compiled remora) instead of bin/remora.js under `runtime`. */
  executable?: string;
}

export async function startSidecar(o: SidecarOptions): Promise<BenchProcess> {
  const file = join(o.env.dir, `${o.name}.yaml`);
  await writeFile(
    file,
    identity(o.env.certs, o.service) +
      (o.app ? `inbound: { listen: "127.0.0.1:0", app: "${o.app}" }\n` : "") +
      `outbound: { listen: "127.0.0.1:0" }\nadmin: { listen: "127.0.0.1:0" }\n` +
      (o.extraYaml ?? ""),
  );
  const { command, args } = o.executable ? { command: o.executable, args: [] } : remoraCommand(o.env.root, o.runtime);
  const flags = o.runtimeFlags ?? [];
  return startProcess({
    name: o.name,
    command,
    args: [...(o.runtime === "deno" && !o.executable ? [args[0]!, args[1]!, ...flags, ...args.slice(2)] : [...flags, ...args]), "proxy", "--config", file, "--watch-interval", "60s"],
    logFile: join(o.env.dir, `${o.name}.log`),
    ready: { line: (r) => r.msg === "sidecar ready" },
  });
}

export function endpointsYaml(destination: string, addresses: readonly string[], identityUri: string): string {
  return `endpoints:\n  ${destination}:\n` + addresses.map((a) => `    - { address: "${a}", identity: ${identityUri} }\n`).join("");
}

export const PAYMENTS_ID = "spiffe://cluster.local/ns/default/sa/payments";

/** Between the sidecars: HTTP/1.1 keep-alive pool (the default) or one multiplexed h2 connection (`mesh_protocol: h2`). */
export type MeshProtocol = "http1" | "h2";

/**
 * A pair of sidecars on `runtime`. `accessLog: false` sets `access_log: false` on both, as
 * HAProxy's pair runs without logs (path remora-RUNTIME-nolog).
 */
export async function startRemoraPair(env: BenchEnv, runtime: RemoraRuntime, runtimeFlags?: string[], meshProtocol: MeshProtocol = "http1", accessLog = true): Promise<PathHandle> {
  const suffix = (meshProtocol === "h2" ? "-h2" : "") + (accessLog ? "" : "-nolog");
  const quiet = accessLog ? "" : "access_log: false\n";
  const payments = await startSidecar({ env, runtime, name: `payments-${runtime}${suffix}`, service: "payments", app: env.app, extraYaml: quiet, ...(runtimeFlags ? { runtimeFlags } : {}) });
  const inbound = payments.readyLine!.inbound as string;
  const orders = await startSidecar({
    env,
    runtime,
    name: `orders-${runtime}${suffix}`,
    service: "orders",
    extraYaml: endpointsYaml("payments", [inbound], PAYMENTS_ID) + (meshProtocol === "h2" ? "protocols: { mesh_protocol: h2 }\n" : "") + quiet,
    ...(runtimeFlags ? { runtimeFlags } : {}),
  });
  const ready = orders.readyLine!;
  const proxies = [orders, payments];
  return {
    name: `remora-${runtime}${suffix}`,
    kind: "remora",
    runtime: String(ready.runtime ?? runtime),
    ...(typeof ready.adapter === "string" ? { adapter: ready.adapter } : {}),
    entry: ready.outbound as string,
    host: "payments",
    proxies,
    tlsServer: { address: inbound, process: payments },
    idleRssMiB: proxies.map((p) => p.stats().rssMiB),
    stop: async () => void (await Promise.all(proxies.map((p) => p.stop()))),
  };
}
