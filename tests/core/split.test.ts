import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { harness } from "./fake-upstream.ts";
import { labelled, seeded, yamlPolicy } from "./traffic-support.ts";
import { pickWeighted } from "../../src/core/pipeline/split.ts";

const V1a = "192.0.2.11:15006";
const V1b = "192.0.2.12:15006";
const V2 = "192.0.2.21:15006";
const eps = { payments: [labelled(V1a, { version: "v1", zone: "a" }), labelled(V1b, { version: "v1", zone: "b" }), labelled(V2, { version: "v2", zone: "a" })] };

const canary = (w1: number, w2: number) =>
  yamlPolicy(`
route:
  destination: payments
  retry_policy: {retry_on: 5xx, num_retries: 2}
  rules:
    - name: canary
      split:
        - {subset: v1, weight: ${w1}}
        - {subset: v2, weight: ${w2}}
subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
`);

async function shareOfV2(h: ReturnType<typeof harness>, n: number): Promise<number> {
  const before = h.upstream.callsTo(V2).length;
  for (let i = 0; i < n; i++) assert.equal((await h.call()).status, 200);
  return ((h.upstream.callsTo(V2).length - before) / n) * 100;
}

describe("weighted splits between subsets", () => {
  test("90/10 over 2,000 seeded requests lands within ±2 points, and each subset gets only its endpoints", async () => {
    const h = harness({ policies: [canary(90, 10)], endpoints: eps, random: seeded(13) });
    const v2 = await shareOfV2(h, 2_000);
    assert.ok(Math.abs(v2 - 10) <= 2, `v2 got ${v2}%`);
    const v1Calls = h.upstream.callsTo(V1a).length + h.upstream.callsTo(V1b).length;
    assert.equal(v1Calls + h.upstream.callsTo(V2).length, 2_000);
    assert.ok(h.upstream.callsTo(V1a).length > 0 && h.upstream.callsTo(V1b).length > 0, "v1 is balanced over both v1 endpoints");
    const subsets = h.eventsOf("rule").map((e) => e.subset);
    assert.equal(subsets.filter((s) => s === "v2").length, h.upstream.callsTo(V2).length);
  });

  test("weights changed live with update() take effect on the next request", async () => {
    const h = harness({ policies: [canary(90, 10)], endpoints: eps, random: seeded(7) });
    await shareOfV2(h, 200);
    h.outbound.update({ policies: [canary(50, 50)], endpoints: eps });
    const v2 = await shareOfV2(h, 2_000);
    assert.ok(Math.abs(v2 - 50) <= 2, `after the update v2 got ${v2}%`);
    h.outbound.update({ policies: [canary(0, 100)], endpoints: eps });
    assert.equal(await shareOfV2(h, 50), 100);
  });

  test("retries stay inside the chosen subset", async () => {
    const h = harness({ policies: [canary(100, 0)], endpoints: eps });
    h.upstream.always(V1a, 503);
    assert.equal((await h.call()).status, 200);
    assert.deepEqual(h.upstream.calls.map((c) => c.address), [V1a, V1b]);
    assert.equal(h.upstream.callsTo(V2).length, 0);
  });

  test("a subset with no endpoints answers 503 no healthy upstream, naming the subset and labels", async () => {
    const h = harness({ policies: [canary(0, 100)], endpoints: { payments: [labelled(V1a, { version: "v1" })] } });
    const res = await h.call();
    assert.equal(res.status, 503);
    assert.equal(await res.text(), 'no healthy upstream (remora: subset "v2" of "payments" has no endpoint labelled version=v2)\n');
    assert.equal(h.upstream.calls.length, 0);
  });

  test("endpoints gaining a label through update() join the subset", async () => {
    const h = harness({ policies: [canary(0, 100)], endpoints: { payments: [labelled(V1a, { version: "v1" })] } });
    assert.equal((await h.call()).status, 503);
    h.outbound.update({ policies: [canary(0, 100)], endpoints: { payments: [labelled(V1a, { version: "v2" })] } });
    assert.equal((await h.call()).status, 200);
  });

  test("pickWeighted: proportional, zero weights never chosen, all-zero gives nothing", () => {
    const branches = [{ weight: 1, n: "a" }, { weight: 0, n: "z" }, { weight: 3, n: "b" }];
    assert.deepEqual([0, 0.24, 0.25, 0.99, 0.999999999].map((r) => pickWeighted(branches, () => r)?.n), ["a", "a", "b", "b", "b"]);
    assert.equal(pickWeighted([{ weight: 0 }], () => 0.5), undefined);
  });
});
