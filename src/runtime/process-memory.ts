// Process memory on /metrics: resident set size under Prometheus' standard name and the
// JavaScript heap, read at scrape time. process.memoryUsage() answers on Node, Bun and Deno
// alike; the reader is injected so tests can pass their own.

import process from "node:process";
import type { Registry } from "../core/metrics/registry.ts";

/** One reading of the host's memory use, in bytes. */
export interface ProcessMemory {
  /** Resident set size: what the kernel holds for the program (heap, code, buffers, allocator slack). */
  rssBytes: number;
  /** JavaScript heap in use: live objects plus garbage not yet collected. */
  heapUsedBytes: number;
}

/** Reads the host's memory use; throws or returns undefined when the host cannot say. */
export type MemoryReader = () => ProcessMemory | undefined;

/**
 * Registers `process_resident_memory_bytes` (the name Prometheus' client libraries use, so
 * dashboards built for them work) and `remora_heap_used_bytes`, both refreshed on every scrape.
 */
export function registerProcessMetrics(registry: Registry, read: MemoryReader): void {
  const rss = registry.gauge({ name: "process_resident_memory_bytes", help: "Resident memory size in bytes." });
  const heap = registry.gauge({ name: "remora_heap_used_bytes", help: "JavaScript heap in use in bytes (live objects and garbage not yet collected), read at scrape time." });
  registry.onCollect(() => {
    let m: ProcessMemory | undefined;
    try {
      m = read();
    } catch {
      m = undefined;
    }
    // A failed reading shows as NaN rather than a stale number that looks healthy.
    rss.set(undefined, m?.rssBytes ?? NaN);
    heap.set(undefined, m?.heapUsedBytes ?? NaN);
  });
}

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
