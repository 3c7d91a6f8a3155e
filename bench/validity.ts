// Did a run measure what it meant to? A run where the load generator was the bottleneck,
// or a healthy path answered with errors, is refused (kept in the JSON, never reported as
// a latency); a path that could not keep up with the offered rate is "saturated", a
// finding in itself.

import type { LoadResult } from "./load/spec.ts";

export interface Verdict {
  status: "ok" | "saturated" | "invalid";
  reason?: string;
}

export const LIMITS = {
  /** An open-loop run must deliver this share of its target rate. */
  minAchievedShare: 0.95,
  /** The generator counts as saturated above this many cores of its own CPU. */
  generatorCores: 0.9,
  /** The generator's p99 lag behind its schedule beyond which its timing is not trusted. */
  dispatchLagP99Ms: 10,
  /** "Sustained" also means the queue did not grow: p99 within this bound. */
  sustainedP99Ms: 100,
};

function errorText(r: LoadResult): string {
  return Object.entries(r.errorKinds)
    .map(([k, n]) => `${n} ${k}`)
    .join(", ");
}

/** `expectErrors`: a path where failures are the point (none today; retries must hide them). */
export function judge(r: LoadResult, o: { expectErrors?: boolean } = {}): Verdict {
  const gen = r.generatorCpuCores;
  if (r.mode === "open") {
    const share = r.achievedRps / (r.targetRps ?? 1);
    if (share < LIMITS.minAchievedShare) {
      if (gen >= LIMITS.generatorCores) {
        return { status: "invalid", reason: `generator saturated (${gen.toFixed(2)} cores) at ${Math.round(r.achievedRps)} of ${r.targetRps} rps` };
      }
      return { status: "saturated", reason: `path saturated: ${Math.round(r.achievedRps)} of ${r.targetRps} rps${r.errors > 0 ? `, ${errorText(r)}` : ""}` };
    }
    if (r.dispatchLagMs.p99 > LIMITS.dispatchLagP99Ms) {
      return { status: "invalid", reason: `generator fell behind its schedule (dispatch lag p99 ${r.dispatchLagMs.p99.toFixed(1)} ms > ${LIMITS.dispatchLagP99Ms} ms)` };
    }
  } else if (gen >= LIMITS.generatorCores) {
    return { status: "invalid", reason: `generator saturated (${gen.toFixed(2)} cores): the maximum is a lower bound` };
  }
  if (r.errors > 0 && !o.expectErrors) return { status: "invalid", reason: `errors on a healthy path: ${errorText(r)}` };
  return { status: "ok" };
}

/** An open-loop run that counts as a sustained rate. */
export function sustained(r: LoadResult, v: Verdict): boolean {
  return v.status === "ok" && r.latencyMs.p99 <= LIMITS.sustainedP99Ms;
}
