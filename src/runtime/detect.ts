// Picks the runtime adapter for the process we run in. The one place that sniffs the
// runtime; nothing on the request path does.

import process from "node:process";
import { RemoraError } from "../core/errors.ts";
import type { Runtime } from "./types.ts";

export type AdapterName = Runtime["name"];

/** A Runtime plus the adapter serving it: `name`/`version` say where we run, `adapter` which code moves the bytes. */
export interface LoadedRuntime extends Runtime {
  readonly adapter: AdapterName;
}

interface RuntimeGlobals {
  Bun?: { version: string };
  Deno?: { version: { deno: string } };
}

export function detectRuntime(): Runtime["name"] {
  const g = globalThis as RuntimeGlobals;
  if (g.Bun !== undefined) return "bun";
  if (g.Deno !== undefined) return "deno";
  return "node";
}

/**
 * The adapter to use on `runtime`: its own native one unless REMORA_RUNTIME_ADAPTER=node asks
 * for the node: compatibility adapter (for comparisons and benches). Bun and Deno both run
 * the node adapter; nothing else can run a foreign runtime's adapter.
 */
export function chooseAdapter(runtime: Runtime["name"], requested: string | undefined): AdapterName {
  const wanted = requested?.trim().toLowerCase();
  if (wanted === undefined || wanted === "" || wanted === runtime || wanted === "native") return runtime;
  if (wanted === "node") return "node";
  throw new RemoraError("ERR_CONFIG_INVALID",
    `REMORA_RUNTIME_ADAPTER="${requested}" cannot be used on ${runtime}; set it to "node" or "${runtime}", or unset it.`);
}

export async function loadRuntime(): Promise<LoadedRuntime> {
  const running = detectRuntime();
  const adapter = chooseAdapter(running, process.env.REMORA_RUNTIME_ADAPTER);
  const g = globalThis as RuntimeGlobals;
  switch (adapter) {
    case "bun":
      return { ...(await import("./bun.ts")).bunRuntime, adapter };
    case "deno":
      return { ...(await import("./deno.ts")).denoRuntime, adapter };
    case "node": {
      const { nodeRuntime } = await import("./node.ts");
      // name/version report the runtime actually running, not the adapter.
      if (running === "bun") return { ...nodeRuntime, name: "bun", version: g.Bun!.version, adapter };
      if (running === "deno") return { ...nodeRuntime, name: "deno", version: g.Deno!.version.deno, adapter };
      return { ...nodeRuntime, adapter };
    }
  }
}
