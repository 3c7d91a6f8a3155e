// Reads this process's memory for /metrics (src/core/metrics/process-metrics.ts);
// process.memoryUsage() answers on Node, Bun and Deno alike.

import process from "node:process";
import type { MemoryReader } from "../core/metrics/process-metrics.ts";

/**
 * TEST-ONLY: with REMORA_TEST_GC_ON_SCRAPE=1 and a collector the runtime exposes (node
 * --expose-gc, deno --v8-flags=--expose-gc, Bun.gc), every reading runs a full GC first, so
 * the soak judges live heap, not garbage awaiting collection. A full GC pauses the process,
 * which is why production never does this.
 */
export const GC_ON_SCRAPE_ENV = "REMORA_TEST_GC_ON_SCRAPE";

export function createProcessMemoryReader(env: Record<string, string | undefined> = process.env): MemoryReader {
  const collect = env[GC_ON_SCRAPE_ENV] === "1" ? fullGc() : undefined;
  return () => {
    collect?.();
    const m = process.memoryUsage();
    return { rssBytes: m.rss, heapUsedBytes: m.heapUsed };
  };
}

function fullGc(): (() => void) | undefined {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun) return () => g.Bun!.gc(true);
  if (typeof g.gc === "function") return () => g.gc!();
  return undefined;
}
