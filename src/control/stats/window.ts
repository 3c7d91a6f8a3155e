// How much each counter and histogram series grew over a window of scrapes, the way
// PromQL's increase() reads counters: a value lower than the one before is a restart from
// zero (prometheus/prometheus promql/functions.go, extrapolatedRate's reset handling).

import { histogramSeries, labelKey, type HistogramSeries, type ParsedFamily } from "../../core/metrics/parse.ts";
import type { EndpointHealth } from "./types.ts";

/** One scrape of one proxy's /metrics. */
export interface Scrape {
  /** Clock time of the scrape, ms. */
  at: number;
  families: ReadonlyMap<string, ParsedFamily>;
  /** The proxy's caller-side endpoint view (admin /endpoints), when it answered. */
  endpoints?: readonly EndpointHealth[];
}

export interface SeriesValue {
  labels: Record<string, string>;
  value: number;
}

/**
 * The scrapes that span the window starting at `startMs`: the last one taken at or before
 * the start (the baseline every increase is measured from) and every one after it.
 */
export function windowOf(history: readonly Scrape[], startMs: number): Scrape[] {
  let first = 0;
  for (let i = 0; i < history.length; i++) if ((history[i]?.at ?? Infinity) <= startMs) first = i;
  return history.slice(first);
}

/** Seconds between the first and last scrape of a window; 0 with fewer than two. */
export function spanSeconds(scrapes: readonly Scrape[]): number {
  const first = scrapes[0];
  const last = scrapes.at(-1);
  return first && last ? (last.at - first.at) / 1000 : 0;
}

function scalarSeries(s: Scrape, family: string): Map<string, SeriesValue> {
  const out = new Map<string, SeriesValue>();
  for (const sample of s.families.get(family)?.samples ?? []) out.set(labelKey(sample.labels), { labels: sample.labels, value: sample.value });
  return out;
}

/**
 * The increase of every series of a counter family across consecutive scrapes. A series
 * missing from the earlier scrape of a pair counts from zero: remora creates a series on
 * its first event, so its absence means zero, not "unknown".
 */
export function counterIncrease(scrapes: readonly Scrape[], family: string): Map<string, SeriesValue> {
  const out = new Map<string, SeriesValue>();
  for (let i = 1; i < scrapes.length; i++) {
    const before = scalarSeries(scrapes[i - 1]!, family);
    for (const [key, cur] of scalarSeries(scrapes[i]!, family)) {
      if (!Number.isFinite(cur.value)) continue;
      const prev = before.get(key)?.value ?? 0;
      const delta = cur.value >= prev ? cur.value - prev : cur.value;
      const acc = out.get(key);
      if (acc) acc.value += delta;
      else out.set(key, { labels: cur.labels, value: delta });
    }
  }
  return out;
}

/** The increase of every series of a histogram family, bucket by bucket, with the same reset rule. */
export function histogramIncrease(scrapes: readonly Scrape[], family: string): Map<string, HistogramSeries> {
  const out = new Map<string, HistogramSeries>();
  const seriesOf = (s: Scrape) => {
    const f = s.families.get(family);
    return new Map((f ? histogramSeries(f) : []).map((h) => [labelKey(h.labels), h]));
  };
  for (let i = 1; i < scrapes.length; i++) {
    const before = seriesOf(scrapes[i - 1]!);
    for (const [key, cur] of seriesOf(scrapes[i]!)) {
      const prev = before.get(key);
      const sameLayout = prev !== undefined && prev.buckets.length === cur.buckets.length && prev.buckets.every((b, j) => b.le === cur.buckets[j]?.le);
      const reset = prev === undefined || !sameLayout || cur.count < prev.count;
      const delta: HistogramSeries = reset
        ? { labels: cur.labels, buckets: cur.buckets.map((b) => ({ ...b })), count: cur.count, sum: cur.sum }
        : {
            labels: cur.labels,
            buckets: cur.buckets.map((b, j) => ({ le: b.le, count: b.count - (prev.buckets[j]?.count ?? 0) })),
            count: cur.count - prev.count,
            sum: cur.sum - prev.sum,
          };
      const acc = out.get(key);
      if (acc === undefined) out.set(key, delta);
      else if (acc.buckets.length === delta.buckets.length && acc.buckets.every((b, j) => b.le === delta.buckets[j]?.le)) {
        acc.buckets.forEach((b, j) => (b.count += delta.buckets[j]?.count ?? 0));
        acc.count += delta.count;
        acc.sum += delta.sum;
      } else out.set(key, delta); // the sidecar changed its buckets: keep the newest layout only
    }
  }
  return out;
}

/** Every series of a family in the latest scrape (gauges, or counters read as totals). */
export function latest(scrapes: readonly Scrape[], family: string): SeriesValue[] {
  const last = scrapes.at(-1);
  return last ? [...scalarSeries(last, family).values()] : [];
}
