// `remora proxy --control … --on-demand [--destinations A,B] [--discovery-timeout 5s]`:
// the flags of on-demand config (docs/control-api.md "On-demand config"), checked here.

import { UsageError } from "./args.ts";
import { parseDuration } from "../core/duration.ts";
import { DEFAULT_DISCOVERY_TIMEOUT_MS } from "../sidecar/control/subscriptions.ts";

export interface OnDemandFlags {
  declared: string[];
  timeoutMs: number;
}

const NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

/** Undefined (whole-mesh config) unless --on-demand, --destinations or REMORA_DESTINATIONS is given. */
export function onDemandFlags(flag: boolean | undefined, destinations: readonly string[] | undefined, timeout: string | undefined, env = process.env.REMORA_DESTINATIONS): OnDemandFlags | undefined {
  const lists = destinations ?? (env === undefined ? undefined : [env]);
  if (!flag && lists === undefined) {
    if (timeout !== undefined) throw new UsageError("remora proxy: --discovery-timeout goes with --on-demand (or --destinations)");
    return undefined;
  }
  const declared = [...new Set((lists ?? []).flatMap((l) => l.split(",")).map((n) => n.trim().toLowerCase()).filter((n) => n !== ""))];
  const bad = declared.find((n) => !NAME.test(n));
  if (bad !== undefined) throw new UsageError(`remora proxy: --destinations: "${bad}" is not a service name (lowercase letters, digits, "." and "-")`);
  let timeoutMs = DEFAULT_DISCOVERY_TIMEOUT_MS;
  if (timeout !== undefined) {
    try {
      timeoutMs = parseDuration(timeout);
    } catch {
      throw new UsageError(`remora proxy: --discovery-timeout "${timeout}" is not a duration (e.g. 5s, 500ms)`);
    }
  }
  return { declared, timeoutMs };
}
