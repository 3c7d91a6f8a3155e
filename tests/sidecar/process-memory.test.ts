// Process memory on /metrics (src/runtime/process-memory.ts): read at scrape time
// through the registry's collect hook, from an injected reader.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Registry } from "../../src/core/metrics/registry.ts";
import { registerProcessMetrics, type ProcessMemory } from "../../src/runtime/process-memory.ts";

describe("process memory metrics", () => {
  test("every exposition reads memory anew", () => {
    const registry = new Registry();
    let reading: ProcessMemory = { rssBytes: 123_456_789, heapUsedBytes: 20_971_520 };
    let reads = 0;
    registerProcessMetrics(registry, () => (reads++, reading));
    assert.equal(reads, 0, "nothing is read before a scrape");
    const first = registry.expose();
    assert.match(first, /^# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1\.23456789e\+08$/m);
    assert.match(first, /^# TYPE remora_heap_used_bytes gauge\nremora_heap_used_bytes 2\.097152e\+07$/m);
    reading = { rssBytes: 2_000, heapUsedBytes: 1_000 };
    const second = registry.expose();
    assert.match(second, /^process_resident_memory_bytes 2000$/m);
    assert.match(second, /^remora_heap_used_bytes 1000$/m);
    assert.equal(reads, 2);
  });

  test("the JSON snapshot is refreshed too", () => {
    const registry = new Registry();
    registerProcessMetrics(registry, () => ({ rssBytes: 5, heapUsedBytes: 3 }));
    const heap = registry.snapshot().find((m) => m.name === "remora_heap_used_bytes");
    assert.deepEqual(heap?.type === "gauge" ? heap.series : undefined, [{ labels: {}, value: 3 }]);
  });

  test("a reader that fails or cannot say shows NaN, never a stale value", () => {
    const registry = new Registry();
    let fail = false;
    registerProcessMetrics(registry, () => {
      if (fail) throw new Error("no /proc here");
      return { rssBytes: 7, heapUsedBytes: 6 };
    });
    assert.match(registry.expose(), /^process_resident_memory_bytes 7$/m);
    fail = true;
    assert.match(registry.expose(), /^process_resident_memory_bytes NaN$/m);
    assert.match(registry.expose(), /^remora_heap_used_bytes NaN$/m);
    const unknown = new Registry();
    registerProcessMetrics(unknown, () => undefined);
    assert.match(unknown.expose(), /^remora_heap_used_bytes NaN$/m);
  });

  test("collect hooks run in registration order before the families are written", () => {
    const registry = new Registry();
    const g = registry.gauge({ name: "x_value", help: "x" });
    const order: string[] = [];
    registry.onCollect(() => (order.push("a"), g.set(undefined, 1)));
    registry.onCollect(() => (order.push("b"), g.inc(undefined, 2)));
    assert.match(registry.expose(), /^x_value 3$/m);
    assert.deepEqual(order, ["a", "b"]);
  });
});
