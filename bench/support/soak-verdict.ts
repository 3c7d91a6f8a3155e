// The soak's memory and file-descriptor verdict, as a pure function of the sampled series,
// so what counts as a leak is unit-tested (tests/core/soak-verdict.test.ts) rather than
// eyeballed. Measured (issue 10, docs/observability.md "Process memory"): on Node a sidecar's
// RSS climbs in steps while V8 sizes its heap (the young generation alone grows to 128 MiB
// under load) and need not come back, while the live heap after a full GC stays flat; so the
// live heap decides, and RSS only has to stay under a hard ceiling.

export interface SoakSample {
  atS: number;
  rssMiB: number;
  fds: number;
  /** Heap in use right after a forced full GC (remora_heap_used_bytes, REMORA_TEST_GC_ON_SCRAPE=1); absent when not sampled. */
  heapMiB?: number;
}

export interface VerdictLimits {
  /** Samples before this are warm-up (JIT, pools, heap sizing) and not judged. */
  warmupS: number;
  /** Live-heap growth (least-squares fit over the judged window) that is a leak: above both bounds. */
  heapGrowthMiB: number;
  heapGrowthPct: number;
  /** Without heap samples: the fitted RSS growth that is a leak, above both bounds. */
  rssGrowthMiB: number;
  rssGrowthPct: number;
  /** RSS no judged sample may exceed, whatever the trend: heap sizing has bounds, so must this. */
  rssCeilingMiB: number;
  fdGrowth: number;
}

export const DEFAULT_LIMITS: Omit<VerdictLimits, "warmupS"> = {
  // A sidecar's live heap is ~20 MiB and moves by under 1 MiB between full GCs (measured,
  // 300 req/s), so 3 MiB of fitted growth is a trend: at 50 req/s, a leak of ~700 B/request
  // shows within the 90 s a 3-minute run judges, ~100 B/request within a 30-minute run's 25.
  heapGrowthMiB: 3,
  heapGrowthPct: 10,
  rssGrowthMiB: 20,
  rssGrowthPct: 15,
  // Measured maximum at 50 req/s: 327 MiB (node 24, default V8 heap sizing); 400 req/s: 490 MiB.
  rssCeilingMiB: 512,
  fdGrowth: 5,
};

export interface ProcessVerdict {
  name: string;
  warmRssMiB: number;
  endRssMiB: number;
  maxRssMiB: number;
  warmFds: number;
  endFds: number;
  /** What decided the memory verdict: the live heap when enough judged samples had one, else RSS. */
  judgedBy: "heap" | "rss";
  warmHeapMiB?: number;
  endHeapMiB?: number;
  /** Least-squares growth over the judged window of whatever judgedBy names, MiB. */
  trendMiB: number;
  /** Memory neither trending up nor over the ceiling (key kept from the first soak's results). */
  rssFlat: boolean;
  fdsFlat: boolean;
  /** Why the verdict is not flat; empty when it is. */
  reasons: string[];
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** Growth of y over the x range of `points`, from the least-squares line; 0 for fewer than 2 distinct x. */
export function fittedGrowth(points: readonly { x: number; y: number }[]): number {
  if (points.length < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / points.length;
  const my = points.reduce((s, p) => s + p.y, 0) / points.length;
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    sxy += (p.x - mx) * (p.y - my);
    sxx += (p.x - mx) ** 2;
  }
  if (sxx === 0) return 0;
  const xs = points.map((p) => p.x);
  return (sxy / sxx) * (Math.max(...xs) - Math.min(...xs));
}

/** One process's verdict from its samples (in time order). */
export function judgeProcess(name: string, samples: readonly SoakSample[], limits: VerdictLimits): ProcessVerdict {
  if (samples.length === 0) throw new Error(`soak: no samples of ${name}`);
  // Judge from warm-up on; a run too short to have samples after it judges its last half.
  let judged = samples.filter((s) => s.atS >= limits.warmupS);
  if (judged.length < 3) judged = samples.slice(Math.floor(samples.length / 2));
  // Both ends are medians of 3 samples: one sample can catch a GC mid-way.
  const first = judged.slice(0, 3);
  const last = judged.slice(-3);
  const reasons: string[] = [];

  // The heap is sampled less often than RSS (each reading costs the process a full GC).
  const heaps = judged.filter((s) => s.heapMiB !== undefined && Number.isFinite(s.heapMiB)) as (SoakSample & { heapMiB: number })[];
  const byHeap = heaps.length >= 3 && heaps.length >= judged.length / 4;
  let trendMiB: number;
  let warmHeapMiB: number | undefined;
  let endHeapMiB: number | undefined;
  if (byHeap) {
    warmHeapMiB = median(heaps.slice(0, 3).map((s) => s.heapMiB));
    endHeapMiB = median(heaps.slice(-3).map((s) => s.heapMiB));
    trendMiB = fittedGrowth(heaps.map((s) => ({ x: s.atS, y: s.heapMiB })));
    if (trendMiB > limits.heapGrowthMiB && trendMiB > (warmHeapMiB * limits.heapGrowthPct) / 100) {
      reasons.push(`live heap grew ${trendMiB.toFixed(1)} MiB (fitted) from ${warmHeapMiB.toFixed(1)} MiB after warm-up`);
    }
  } else {
    const warm = median(first.map((s) => s.rssMiB));
    trendMiB = fittedGrowth(judged.map((s) => ({ x: s.atS, y: s.rssMiB })));
    if (trendMiB > limits.rssGrowthMiB && trendMiB > (warm * limits.rssGrowthPct) / 100) {
      reasons.push(`RSS grew ${trendMiB.toFixed(1)} MiB (fitted; no heap samples to tell heap sizing from a leak)`);
    }
  }
  const maxRssMiB = Math.max(...samples.map((s) => s.rssMiB));
  const maxJudged = Math.max(...judged.map((s) => s.rssMiB));
  if (maxJudged > limits.rssCeilingMiB) reasons.push(`RSS reached ${maxJudged.toFixed(1)} MiB, over the ${limits.rssCeilingMiB} MiB ceiling`);
  const memoryFlat = reasons.length === 0;

  const warmFds = median(first.map((s) => s.fds));
  const endFds = median(last.map((s) => s.fds));
  const fdsFlat = endFds <= warmFds + limits.fdGrowth;
  if (!fdsFlat) reasons.push(`open file descriptors grew from ${warmFds} to ${endFds}`);

  return {
    name,
    warmRssMiB: median(first.map((s) => s.rssMiB)),
    endRssMiB: median(last.map((s) => s.rssMiB)),
    maxRssMiB,
    warmFds,
    endFds,
    judgedBy: byHeap ? "heap" : "rss",
    ...(warmHeapMiB !== undefined ? { warmHeapMiB } : {}),
    ...(endHeapMiB !== undefined ? { endHeapMiB } : {}),
    trendMiB: Math.round(trendMiB * 10) / 10,
    rssFlat: memoryFlat,
    fdsFlat,
    reasons,
  };
}
