// Process memory on /metrics, read at scrape time from an injected reader (the core never
// touches `process`): resident set size under Prometheus' standard name, and the runtime's heap.

import type { Registry } from "./registry.ts";

/** One reading of the process's memory, in bytes. */
export interface ProcessMemory {
  /** Resident set size: what the kernel holds for the process (heap, code, buffers, allocator slack). */
  rssBytes: number;
  /** JavaScript heap in use: live objects plus garbage not yet collected. */
  heapUsedBytes: number;
}

/** Reads the process's memory; throws or returns undefined when the host cannot say. */
export type MemoryReader = () => ProcessMemory | undefined;

/**
 * Registers `process_resident_memory_bytes` (the name Prometheus' client libraries use, so
 * dashboards built for them work) and `remora_heap_used_bytes`, both refreshed on every scrape.
 */
export function registerProcessMetrics(registry: Registry, read: MemoryReader): void {
  const rss = registry.gauge({ name: "process_resident_memory_bytes", help: "Resident memory size in bytes." });
  const heap = registry.gauge({ name: "remora_heap_used_bytes", help: "JavaScript heap in use in bytes (process.memoryUsage().heapUsed), read at scrape time." });
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
