// Quantiles estimated from histogram buckets the way PromQL's histogram_quantile does
// (prometheus/prometheus promql/quantile.go, bucketQuantile), for `remora stat`.

import type { HistogramSnapshot } from "./registry.ts";

/**
 * The q-quantile (0..1) of a histogram, interpolating linearly inside the bucket where
 * the rank falls, with the lowest bucket starting at 0. NaN when there are no
 * observations; if the rank falls in the +Inf bucket, the largest finite bound.
 */
export function quantile(h: HistogramSnapshot, q: number): number {
  if (Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  if (h.count === 0 || h.buckets.length === 0) return NaN;
  const rank = q * h.count;
  const i = h.buckets.findIndex((b) => b.count >= rank);
  if (i === -1) return h.buckets.at(-1)?.le ?? NaN;
  const bucket = h.buckets[i] ?? { le: NaN, count: 0 };
  // As in Prometheus: the first bucket starts at 0 unless its bound is not positive.
  if (i === 0 && bucket.le <= 0) return bucket.le;
  const start = i === 0 ? 0 : (h.buckets[i - 1]?.le ?? 0);
  const below = i === 0 ? 0 : (h.buckets[i - 1]?.count ?? 0);
  const inBucket = bucket.count - below;
  if (inBucket === 0) return bucket.le;
  return start + (bucket.le - start) * ((rank - below) / inBucket);
}

/** Adds histograms with the same buckets (e.g. every destination's), for an overall quantile. */
export function sumHistograms(list: readonly HistogramSnapshot[]): HistogramSnapshot {
  const first = list[0];
  if (first === undefined) return { buckets: [], count: 0, sum: 0 };
  const bounds = first.buckets.map((b) => b.le);
  for (const h of list) {
    if (h.buckets.length !== bounds.length || h.buckets.some((b, i) => b.le !== bounds[i])) {
      throw new TypeError("cannot add histograms whose buckets differ");
    }
  }
  return {
    buckets: bounds.map((le, i) => ({ le, count: list.reduce((n, h) => n + (h.buckets[i]?.count ?? 0), 0) })),
    count: list.reduce((n, h) => n + h.count, 0),
    sum: list.reduce((n, h) => n + h.sum, 0),
  };
}
