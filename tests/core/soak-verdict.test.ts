// The soak's verdict (bench/support/soak-verdict.ts): it must fail a real leak, even one that
// RSS hides behind heap sizing, and must not fail the step-shaped RSS of heap sizing itself.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_LIMITS, fittedGrowth, judgeProcess, type SoakSample } from "../../bench/support/soak-verdict.ts";

// RSS every 30 s of the lead's 30-minute soak at 50 req/s (node 24; /work/brief/soak30-2026-11-25.json):
// the steps of V8 sizing its heap, which the first verdict called GROWING.
const ORDERS_RSS = [121.8, 177.9, 208, 227.5, 228.5, 230.5, 231, 239.6, 240.9, 269.1, 288.7, 289, 296, 312.9, 313.2, 313.7, 312.6, 312.6, 312.6, 312.6, 312.9, 312.7, 312.7, 312.7, 312.7, 312.7, 312.7, 313, 313.1, 313.1, 312.9, 313.1, 314, 314.3, 314.8, 316.1, 316.2, 316.7, 316, 316.2, 316.8, 326.3, 326.5, 327, 326.6, 325.9, 326.2, 326.7, 325.9, 325.9, 325.9, 325.9, 326, 326, 326, 326, 326, 326, 326, 326, 326];
const PAYMENTS_RSS = [121.5, 162.1, 176.4, 224.3, 225.1, 227.4, 227.9, 228.1, 230.6, 230.9, 231.2, 232.2, 232.8, 233, 233.1, 233.7, 233.7, 233.9, 234, 234, 234.1, 234.2, 234.2, 234.3, 234.3, 234.4, 234.4, 234.5, 234.6, 235.1, 235.1, 243.3, 270.1, 286.9, 287.3, 287.6, 294.3, 173.2, 185.7, 232.5, 241, 242.3, 242.2, 251.6, 278, 278.3, 279, 279.3, 279.3, 279.3, 279.3, 279.3, 279.3, 279.3, 279.3, 279.3, 279.4, 279.4, 279.4, 279.4, 279.4];

/** Deterministic noise in [-amp, amp] (a fixed LCG), like a live heap's wobble between full GCs. */
function noise(amp: number): () => number {
  let x = 12345;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return (x / 2 ** 31 - 0.5) * 2 * amp;
  };
}

function series(o: { everyS: number; count: number; rss: (i: number) => number; heap?: (i: number) => number; fds?: (i: number) => number }): SoakSample[] {
  return Array.from({ length: o.count }, (_, i) => ({
    atS: i * o.everyS,
    rssMiB: o.rss(i),
    fds: o.fds?.(i) ?? 37,
    ...(o.heap ? { heapMiB: o.heap(i) } : {}),
  }));
}

const thirtyMinutes = { ...DEFAULT_LIMITS, warmupS: 300 };
const threeMinutes = { ...DEFAULT_LIMITS, warmupS: 90 };

describe("soak verdict", () => {
  test("fittedGrowth is the least-squares line's rise over the x range", () => {
    assert.equal(fittedGrowth([{ x: 0, y: 1 }, { x: 10, y: 3 }, { x: 20, y: 5 }]), 4);
    assert.equal(fittedGrowth([{ x: 0, y: 7 }, { x: 10, y: 7 }]), 0);
    assert.equal(fittedGrowth([{ x: 5, y: 1 }]), 0);
    // A one-sample spike barely moves the fit, unlike a last-minus-first difference.
    assert.ok(Math.abs(fittedGrowth([0, 0, 0, 0, 0, 0, 0, 0, 0, 10].map((y, x) => ({ x, y })))) < 6);
  });

  test("the 30-minute run's step-shaped RSS with a flat live heap is flat (heap sizing, not a leak)", () => {
    const wobble = noise(0.5);
    for (const [name, rss] of [["orders", ORDERS_RSS], ["payments", PAYMENTS_RSS]] as const) {
      const v = judgeProcess(name, series({ everyS: 30, count: rss.length, rss: (i) => rss[i]!, heap: () => 20 + wobble() }), thirtyMinutes);
      assert.equal(v.judgedBy, "heap");
      assert.equal(v.rssFlat, true, `${name}: ${v.reasons.join("; ")}`);
      assert.deepEqual(v.reasons, []);
    }
  });

  test("the same RSS judged without heap samples still fails payments: RSS alone cannot tell sizing from a leak", () => {
    const v = judgeProcess("payments", series({ everyS: 30, count: PAYMENTS_RSS.length, rss: (i) => PAYMENTS_RSS[i]! }), thirtyMinutes);
    assert.equal(v.judgedBy, "rss");
    assert.equal(v.rssFlat, false);
    assert.match(v.reasons[0]!, /RSS grew .* no heap samples/);
  });

  test("a 1 KB/request leak at 50 req/s fails a 3-minute run even while RSS stays flat", () => {
    const perSecondMiB = (1024 * 50) / 2 ** 20;
    const wobble = noise(0.5);
    const v = judgeProcess("orders", series({ everyS: 5, count: 37, rss: () => 235, heap: (i) => 20 + i * 5 * perSecondMiB + wobble() }), threeMinutes);
    assert.equal(v.rssFlat, false);
    assert.match(v.reasons[0]!, /^live heap grew \d+\.\d MiB \(fitted\) from 2\d\.\d MiB after warm-up$/);
  });

  test("a 100 B/request leak at 50 req/s fails a 30-minute run hidden in the real step-shaped RSS", () => {
    const perSecondMiB = (100 * 50) / 2 ** 20;
    const wobble = noise(0.5);
    const v = judgeProcess("orders", series({ everyS: 30, count: ORDERS_RSS.length, rss: (i) => ORDERS_RSS[i]!, heap: (i) => 20 + i * 30 * perSecondMiB + wobble() }), thirtyMinutes);
    assert.equal(v.rssFlat, false);
    assert.ok(v.trendMiB > 6 && v.trendMiB < 8, `fitted ${v.trendMiB} MiB for 7.2 MiB leaked`);
  });

  test("heap samples taken every other RSS sample are enough; noise and a one-off step are not a leak", () => {
    const wobble = noise(0.6);
    // Code space and caches settle once, +2 MiB, late in the run: below both bounds.
    const v = judgeProcess("payments", series({ everyS: 5, count: 37, rss: () => 240, heap: (i) => 18 + (i > 25 ? 2 : 0) + wobble() }).map((s, i) => (i % 2 === 0 ? s : { atS: s.atS, rssMiB: s.rssMiB, fds: s.fds })), threeMinutes);
    assert.equal(v.judgedBy, "heap");
    assert.equal(v.rssFlat, true, v.reasons.join("; "));
  });

  test("RSS over the ceiling fails whatever the heap does", () => {
    const v = judgeProcess("orders", series({ everyS: 30, count: 61, rss: (i) => (i === 50 ? 530 : 320), heap: () => 20 }), thirtyMinutes);
    assert.equal(v.rssFlat, false);
    assert.deepEqual(v.reasons, ["RSS reached 530.0 MiB, over the 512 MiB ceiling"]);
    assert.equal(v.maxRssMiB, 530);
  });

  test("growing file descriptors fail; the ends are medians of three samples", () => {
    const v = judgeProcess("control", series({ everyS: 30, count: 61, rss: () => 125, heap: () => 24, fds: (i) => 31 + Math.floor(i / 5) }), thirtyMinutes);
    assert.equal(v.rssFlat, true);
    assert.equal(v.fdsFlat, false);
    assert.equal(v.warmFds, 33);
    assert.equal(v.endFds, 42);
    const blip = judgeProcess("control", series({ everyS: 30, count: 61, rss: () => 125, heap: () => 24, fds: (i) => (i === 60 ? 90 : 31) }), thirtyMinutes);
    assert.equal(blip.fdsFlat, true);
  });

  test("a run shorter than its warm-up judges its second half", () => {
    const v = judgeProcess("orders", series({ everyS: 5, count: 10, rss: (i) => 200 + i, heap: () => 20 }), { ...DEFAULT_LIMITS, warmupS: 300 });
    assert.equal(v.warmRssMiB, 206);
    assert.equal(v.endRssMiB, 208);
  });
});
