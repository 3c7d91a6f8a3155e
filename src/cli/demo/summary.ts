// Per-phase numbers for the demo's summary table: what the orders app saw (status,
// latency) and what its sidecar reported (retries), nothing estimated.

import { table } from "../table.ts";

export interface CallOutcome {
  /** 0 when the app got no HTTP answer at all. */
  status: number;
  ms: number;
}

export interface Phase {
  name: string;
  calls: CallOutcome[];
  /** `retry` events on the caller's feed during the phase. */
  retries: number;
}

export interface PhaseSummary {
  phase: string;
  requests: number;
  /** Share of calls answered 2xx, 0..1; undefined with no calls. */
  success: number | undefined;
  retries: number;
  p50Ms: number;
  p99Ms: number;
}

/** Nearest-rank percentile (the smallest value with at least q of the calls at or below it). */
export function percentile(sortedMs: readonly number[], q: number): number {
  if (sortedMs.length === 0) return 0;
  return sortedMs[Math.min(sortedMs.length - 1, Math.max(0, Math.ceil(q * sortedMs.length) - 1))]!;
}

export function summarise(p: Phase): PhaseSummary {
  const ms = p.calls.map((c) => c.ms).sort((a, b) => a - b);
  const ok = p.calls.filter((c) => c.status >= 200 && c.status < 300).length;
  return {
    phase: p.name,
    requests: p.calls.length,
    success: p.calls.length ? ok / p.calls.length : undefined,
    retries: p.retries,
    p50Ms: percentile(ms, 0.5),
    p99Ms: percentile(ms, 0.99),
  };
}

export function summaryTable(rows: readonly PhaseSummary[]): string {
  return table(
    ["phase", "requests", "success", "retries", "p50", "p99"],
    rows.map((r) => [
      r.phase,
      String(r.requests),
      r.success === undefined ? "-" : `${(r.success * 100).toFixed(1)}%`,
      String(r.retries),
      `${r.p50Ms.toFixed(1)} ms`,
      `${r.p99Ms.toFixed(1)} ms`,
    ]),
    new Set([1, 2, 3, 4, 5]),
  );
}
