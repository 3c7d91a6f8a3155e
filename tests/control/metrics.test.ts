// The control plane's own GET /metrics: its process memory, without a token (it holds no
// secrets), and a 404 when the server layer gave it no registry.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createControlApp } from "../../src/control/app.ts";
import { ControlPlane } from "../../src/control/control-plane.ts";
import { MemoryStore } from "../../src/control/store.ts";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { createRootCa, generateKeyPair } from "../../src/core/identity/ca.ts";
import { CONTENT_TYPE, Registry } from "../../src/core/metrics/registry.ts";
import { registerProcessMetrics } from "../../src/runtime/process-memory.ts";
import { ADMIN, T0, TD } from "./support.ts";

async function app(metrics?: Registry) {
  const clock = new FakeClock(T0);
  const ca = await createRootCa({ trustDomain: TD, ttlMs: 3_600_000, now: T0 });
  const plane = await ControlPlane.open({ store: new MemoryStore(), clock });
  const logger = { info: () => {}, warn: () => {} };
  return createControlApp({ plane, clock, ca, bundlePem: ca.certPem, trustDomain: TD, tokenKeys: await generateKeyPair(), adminToken: ADMIN, certTtlMs: 3_600_000, logger, ...(metrics ? { metrics } : {}) });
}

test("GET /metrics serves the registry, read at request time, with no token", async () => {
  const registry = new Registry();
  let heap = 20 * 2 ** 20;
  registerProcessMetrics(registry, () => ({ rssBytes: 120 * 2 ** 20, heapUsedBytes: heap }));
  const a = await app(registry);
  const res = await a.fetch(new Request("https://control.test/metrics"), { remote: "192.0.2.9:40000" });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), CONTENT_TYPE);
  const text = await res.text();
  assert.match(text, /^process_resident_memory_bytes 1\.2582912e\+08$/m);
  assert.match(text, /^remora_heap_used_bytes 2\.097152e\+07$/m);
  heap = 1024;
  const again = await (await a.fetch(new Request("https://control.test/metrics"), { remote: "192.0.2.9:40000" })).text();
  assert.match(again, /^remora_heap_used_bytes 1024$/m);
});

test("without a registry, /metrics is not a route", async () => {
  const a = await app();
  const res = await a.fetch(new Request("https://control.test/metrics"), { remote: "192.0.2.9:40000" });
  assert.equal(res.status, 404);
});
