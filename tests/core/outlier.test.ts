import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { MeshEvent } from "../../src/core/events.ts";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { newHostHealth, OutlierDetector, type OutlierHost } from "../../src/core/outlier.ts";
import type { OutlierPolicy } from "../../src/core/policy/types.ts";
import type { AttemptOutcome } from "../../src/core/retry/outcome.ts";
import { B1, B2, B3, B4, endpoints, harness, outlierPolicy, policy } from "./fake-upstream.ts";

const S500: AttemptOutcome = { kind: "status", status: 500 };
const S200: AttemptOutcome = { kind: "status", status: 200 };
const status = (s: number): AttemptOutcome => ({ kind: "status", status: s });

function setup(o: Partial<OutlierPolicy> = {}, n = 2, startMs = 0) {
  const clock = new FakeClock(startMs);
  const events: MeshEvent[] = [];
  const hosts: OutlierHost[] = Array.from({ length: n }, (_, i) => ({ address: `192.0.2.${i + 1}:15006`, health: newHostHealth() }));
  const detector = new OutlierDetector({ destination: "payments", policy: outlierPolicy(o), clock, onEvent: (e) => events.push(e) });
  const host = (i: number): OutlierHost => {
    const h = hosts[i];
    if (h === undefined) throw new Error(`no host ${i}`);
    return h;
  };
  const record = (i: number, outcome: AttemptOutcome, times = 1): void => {
    for (let k = 0; k < times; k++) detector.record(host(i), outcome, hosts);
  };
  /** Moves time and lets the detector look (it has no timers of its own). */
  const at = (ms: number): void => {
    clock.advanceTo(ms);
    detector.sweep(hosts);
  };
  return { clock, events, hosts, detector, host, record, at };
}

describe("consecutive_5xx", () => {
  test("ejects at exactly N consecutive errors, inline", () => {
    const s = setup({ consecutive5xx: 5 });
    s.record(0, S500, 4);
    assert.equal(s.host(0).health.ejected, false);
    assert.equal(s.host(0).health.consecutive5xx, 4);
    s.record(0, S500);
    assert.equal(s.host(0).health.ejected, true);
    assert.deepEqual(s.events, [{ type: "eject", destination: "payments", endpoint: B1, reason: "consecutive_5xx", untilMs: 30_000, ejectionCount: 1 }]);
    assert.equal(s.clock.pending(), 0, "no background timers");
  });

  test("any non-5xx response resets the run", () => {
    const s = setup({ consecutive5xx: 3 });
    s.record(0, S500, 2);
    s.record(0, status(404));
    s.record(0, S500, 2);
    s.record(0, S200);
    s.record(0, S500, 2);
    assert.equal(s.host(0).health.ejected, false);
    s.record(0, status(503));
    assert.equal(s.host(0).health.ejected, true);
  });

  test("local failures (connect, reset, timeout, TLS) count together with 5xx responses", () => {
    const s = setup({ consecutive5xx: 5 });
    s.record(0, { kind: "connect-failure" });
    s.record(0, { kind: "reset" });
    s.record(0, { kind: "timeout" });
    s.record(0, { kind: "tls" });
    assert.equal(s.host(0).health.ejected, false);
    s.record(0, S500);
    assert.equal(s.host(0).health.ejected, true);
  });

  test("a circuit-breaker overflow neither counts nor resets", () => {
    const s = setup({ consecutive5xx: 2 });
    s.record(0, S500);
    s.record(0, { kind: "overflow" }, 5);
    assert.equal(s.host(0).health.consecutive5xx, 1);
    s.record(0, S500);
    assert.equal(s.host(0).health.ejected, true);
  });

  test("0 disables the detector", () => {
    const s = setup({ consecutive5xx: 0 });
    s.record(0, S500, 50);
    assert.equal(s.host(0).health.ejected, false);
  });
});

describe("consecutive_gateway_failure", () => {
  test("counts 502/503/504 and local failures; ejects at N", () => {
    const s = setup({ consecutive5xx: 0, consecutiveGatewayFailure: 4 });
    s.record(0, status(502));
    s.record(0, status(503));
    s.record(0, { kind: "reset" });
    assert.equal(s.host(0).health.ejected, false);
    s.record(0, status(504));
    assert.equal(s.host(0).health.ejected, true);
    assert.equal((s.events[0] as { reason: string }).reason, "consecutive_gateway_failure");
  });

  test("a 500 breaks a run of gateway errors, and so does a success", () => {
    const s = setup({ consecutive5xx: 0, consecutiveGatewayFailure: 3 });
    s.record(0, status(502), 2);
    s.record(0, S500);
    s.record(0, status(502), 2);
    s.record(0, S200);
    s.record(0, status(503), 2);
    assert.equal(s.host(0).health.ejected, false);
    s.record(0, status(503));
    assert.equal(s.host(0).health.ejected, true);
  });
});

describe("ejection time and return", () => {
  test("lasts base x ejection count: 30 s, 60 s, 90 s ...", () => {
    const s = setup({ consecutive5xx: 1 });
    s.record(0, S500);
    assert.equal(s.host(0).health.ejectedUntilMs, 30_000);
    s.at(29_999);
    assert.equal(s.host(0).health.ejected, true);
    s.at(30_000);
    assert.equal(s.host(0).health.ejected, false);
    s.record(0, S500);
    assert.equal(s.host(0).health.ejectionCount, 2);
    assert.equal(s.host(0).health.ejectedUntilMs, 90_000);
    s.at(90_000);
    s.record(0, S500);
    assert.equal(s.host(0).health.ejectedUntilMs, 180_000);
    assert.deepEqual(s.events.flatMap((e) => (e.type === "eject" ? [[e.ejectionCount, e.untilMs]] : [])), [[1, 30_000], [2, 90_000], [3, 180_000]]);
  });

  test("is capped by max_ejection_time", () => {
    const s = setup({ consecutive5xx: 1, baseEjectionMs: 30_000, maxEjectionMs: 60_000 });
    const durations: number[] = [];
    for (let i = 0; i < 4; i++) {
      const now = s.clock.now();
      s.record(0, S500);
      const until = s.host(0).health.ejectedUntilMs ?? 0;
      durations.push(until - now);
      s.at(until);
    }
    assert.deepEqual(durations, [30_000, 60_000, 60_000, 60_000]);
  });

  test("an endpoint returns at the first interval sweep after its ejection time", () => {
    // Detector made at 0: sweeps at 10 s, 20 s, ... Ejected at 5 s for 30 s -> back at 40 s.
    const s = setup({ consecutive5xx: 1 });
    s.at(5_000);
    s.record(0, S500);
    assert.equal(s.host(0).health.ejectedUntilMs, 40_000);
    s.at(35_000);
    assert.equal(s.host(0).health.ejected, true);
    s.at(39_999);
    assert.equal(s.host(0).health.ejected, true);
    s.at(40_000);
    assert.equal(s.host(0).health.ejected, false);
    assert.deepEqual(s.events.at(-1), { type: "uneject", destination: "payments", endpoint: B1 });
  });

  test("sweeps are counted from when the detector was created", () => {
    const s = setup({ consecutive5xx: 1 }, 2, 1_000_003);
    s.record(0, S500);
    assert.equal(s.host(0).health.ejectedUntilMs, 1_030_003);
    s.at(1_030_003);
    assert.equal(s.host(0).health.ejected, false);
  });

  test("an overdue return is noticed lazily on the next look, long after", () => {
    const s = setup({ consecutive5xx: 1 });
    s.record(0, S500);
    s.clock.advance(3_600_000);
    assert.equal(s.host(0).health.ejected, true, "nothing happens without a look");
    s.detector.sweep(s.hosts);
    assert.equal(s.host(0).health.ejected, false);
    assert.equal(s.host(0).health.ejectionCount, 0, "an hour healthy decayed the count");
  });

  test("the ejection count decays by one per interval spent healthy", () => {
    const s = setup({ consecutive5xx: 1 });
    s.record(0, S500); // count 1, back at 30 s
    s.at(30_000);
    s.record(0, S500); // count 2, 60 s -> back at 90 s
    s.at(90_000);
    assert.equal(s.host(0).health.ejectionCount, 2);
    s.at(99_999);
    assert.equal(s.host(0).health.ejectionCount, 2);
    s.at(100_000);
    assert.equal(s.host(0).health.ejectionCount, 1);
    s.at(110_000);
    assert.equal(s.host(0).health.ejectionCount, 0);
    s.record(0, S500);
    assert.equal(s.host(0).health.ejectionCount, 1);
    assert.equal(s.host(0).health.ejectedUntilMs, 140_000, "back to the base ejection time");
  });

  test("counters reset on ejection and on return; results while ejected cannot re-eject", () => {
    const s = setup({ consecutive5xx: 3 });
    s.record(0, S500, 3);
    assert.equal(s.host(0).health.consecutive5xx, 0);
    s.record(0, S500, 10);
    assert.equal(s.events.filter((e) => e.type === "eject").length, 1);
    s.at(30_000);
    assert.equal(s.host(0).health.ejected, false);
    assert.equal(s.host(0).health.consecutive5xx, 0, "errors seen while ejected are forgotten");
    s.record(0, S500, 2);
    assert.equal(s.host(0).health.ejected, false);
  });
});

describe("max_ejection_percent", () => {
  test("limits the ejected share after the ejection", () => {
    const s = setup({ consecutive5xx: 1, maxEjectionPercent: 20 }, 10);
    for (let i = 0; i < 4; i++) s.record(i, S500);
    assert.deepEqual(s.hosts.map((h) => h.health.ejected).filter(Boolean).length, 2);
  });

  test("one endpoint may always be ejected, even when 10% of the set is less than one", () => {
    const s = setup({ consecutive5xx: 1, maxEjectionPercent: 10 }, 4);
    s.record(0, S500);
    s.record(1, S500);
    assert.deepEqual(s.hosts.map((h) => h.health.ejected), [true, false, false, false]);
  });

  test("0% still allows the one ejection (Envoy's historic always-eject-one rule)", () => {
    const s = setup({ consecutive5xx: 1, maxEjectionPercent: 0 }, 3);
    s.record(0, S500);
    s.record(1, S500);
    assert.deepEqual(s.hosts.map((h) => h.health.ejected), [true, false, false]);
  });

  test("the last available endpoint is never ejected", () => {
    const two = setup({ consecutive5xx: 1, maxEjectionPercent: 100 }, 2);
    two.record(0, S500);
    two.record(1, S500, 20);
    assert.deepEqual(two.hosts.map((h) => h.health.ejected), [true, false]);
    const one = setup({ consecutive5xx: 1, maxEjectionPercent: 100 }, 1);
    one.record(0, S500, 20);
    assert.equal(one.host(0).health.ejected, false);
    assert.equal(one.events.length, 0);
  });
});

describe("outlier detection in the pipeline", () => {
  test("ejected endpoints receive no traffic until they return", async () => {
    const h = harness({ policies: [policy({ numRetries: 0, outlier: { consecutive5xx: 2 } })] });
    h.upstream.on(B1, 500, 500);
    for (let i = 0; i < 4; i++) await h.call();
    assert.deepEqual(h.upstream.calls.map((c) => c.address), [B1, B2, B1, B2]);
    for (let i = 0; i < 4; i++) await h.call();
    assert.deepEqual(h.upstream.calls.slice(4).map((c) => c.address), [B2, B2, B2, B2]);
    h.clock.advance(30_000);
    await h.call();
    await h.call();
    assert.deepEqual(h.upstream.calls.slice(8).map((c) => c.address).sort(), [B1, B2]);
    assert.deepEqual(h.eventsOf("uneject").map((e) => e.endpoint), [B1]);
  });

  test("panic threshold: with fewer than half available, balance over all endpoints", async () => {
    const h = harness({ policies: [policy({ numRetries: 0, outlier: { consecutive5xx: 1, maxEjectionPercent: 100 } })], endpoints: { payments: endpoints(B1, B2, B3) } });
    h.upstream.on(B1, 500).on(B2, 500);
    await h.call();
    await h.call();
    const status = h.outbound.destinations()[0]?.endpoints.map((e) => e.ejected);
    assert.deepEqual(status, [true, true, false]);
    for (let i = 0; i < 6; i++) await h.call();
    assert.deepEqual(new Set(h.upstream.calls.slice(2).map((c) => c.address)), new Set([B1, B2, B3]), "1 of 3 available: panic");
  });

  test("no panic at exactly half available", async () => {
    const h = harness({ policies: [policy({ numRetries: 0, outlier: { consecutive5xx: 1, maxEjectionPercent: 100 } })], endpoints: { payments: endpoints(B1, B2, B3, B4) } });
    h.upstream.on(B1, 500).on(B2, 500);
    await h.call();
    await h.call();
    for (let i = 0; i < 6; i++) await h.call();
    assert.deepEqual(new Set(h.upstream.calls.slice(2).map((c) => c.address)), new Set([B3, B4]));
  });

  test("destinations() reports ejection state, evaluated at the time of the query", async () => {
    const h = harness({ policies: [policy({ numRetries: 0, outlier: { consecutive5xx: 1 } })] });
    h.upstream.on(B1, 502);
    await h.call();
    const [d] = h.outbound.destinations();
    assert.deepEqual(d?.endpoints[0], { address: B1, identity: "spiffe://cluster.local/ns/default/sa/payments-1", available: false, ejected: true, ejectedUntilMs: 30_000, ejectionCount: 1, activeRequests: 0, consecutive5xx: 0 });
    h.clock.advance(30_000);
    assert.equal(h.outbound.destinations()[0]?.endpoints[0]?.ejected, false);
    assert.equal(h.eventsOf("uneject").length, 1);
  });
});
