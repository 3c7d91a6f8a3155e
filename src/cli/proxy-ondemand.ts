// `remora proxy --control …` config mode flags (docs/control-api.md "On-demand config"):
// on-demand is the default; `--whole-mesh` (or `--on-demand=false`) asks for the v1 snapshot.

import { UsageError } from "./args.ts";
import { parseDuration } from "../core/duration.ts";
import { DEFAULT_DISCOVERY_TIMEOUT_MS, DEFAULT_UNWATCH_AFTER_MS } from "../sidecar/control/subscriptions.ts";

export interface OnDemandFlags {
  declared: string[];
  timeoutMs: number;
  /** 0: discovered names are watched for the sidecar's life. */
  unwatchAfterMs: number;
}

export interface ConfigModeFlags {
  /** `--on-demand`: the default since on-demand became it; kept so scripts keep working. */
  onDemand?: boolean | undefined;
  wholeMesh?: boolean | undefined;
  destinations?: readonly string[] | undefined;
  discoveryTimeout?: string | undefined;
  unwatchAfter?: string | undefined;
}

const NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

/**
 * `--on-demand=false` and `--on-demand=true` as parseArgs can read them (a boolean flag takes
 * no value there): `--whole-mesh` and `--on-demand`.
 */
export function normalizeOnDemandArgs(argv: readonly string[]): string[] {
  return argv.map((a) => {
    const m = /^--on-demand=(.*)$/.exec(a);
    if (m === null) return a;
    const v = m[1]!.toLowerCase();
    if (v === "false" || v === "0" || v === "no") return "--whole-mesh";
    if (v === "true" || v === "1" || v === "yes") return "--on-demand";
    throw new UsageError(`remora proxy: --on-demand=${m[1]} must be true or false (false: receive the whole mesh, as --whole-mesh)`);
  });
}

/** Undefined: the whole-mesh snapshot (`--whole-mesh`). Otherwise the on-demand settings (the default). */
export function onDemandFlags(f: ConfigModeFlags, env = process.env.REMORA_DESTINATIONS): OnDemandFlags | undefined {
  if (f.wholeMesh) {
    if (f.onDemand) throw new UsageError("remora proxy: --on-demand and --whole-mesh contradict each other; give one");
    for (const [flag, v] of [["--discovery-timeout", f.discoveryTimeout], ["--unwatch-after", f.unwatchAfter]] as const) {
      if (v !== undefined) throw new UsageError(`remora proxy: ${flag} goes with on-demand config, not --whole-mesh`);
    }
    // --destinations with --whole-mesh is redundant, not wrong: the whole mesh holds them too.
    return undefined;
  }
  const lists = f.destinations ?? (env === undefined ? [] : [env]);
  const declared = [...new Set(lists.flatMap((l) => l.split(",")).map((n) => n.trim().toLowerCase()).filter((n) => n !== ""))];
  const bad = declared.find((n) => !NAME.test(n));
  if (bad !== undefined) throw new UsageError(`remora proxy: --destinations: "${bad}" is not a service name (lowercase letters, digits, "." and "-")`);
  return {
    declared,
    timeoutMs: duration("--discovery-timeout", f.discoveryTimeout, DEFAULT_DISCOVERY_TIMEOUT_MS),
    unwatchAfterMs: duration("--unwatch-after", f.unwatchAfter, DEFAULT_UNWATCH_AFTER_MS),
  };
}

function duration(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  try {
    return parseDuration(text);
  } catch {
    throw new UsageError(`remora proxy: ${flag} "${text}" is not a duration (e.g. ${flag === "--unwatch-after" ? "30m, 1h, or 0 for never" : "5s, 500ms"})`);
  }
}
