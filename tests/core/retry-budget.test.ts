import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createMeshMetrics, recordLimitEvent } from "../../src/core/metrics/mesh-metrics.ts";
import { Registry } from "../../src/core/metrics/registry.ts";
import type { LimitEvent } from "../../src/core/pipeline/circuit-breaker.ts";
import { DEFAULT_RETRY_BUDGET } from "../../src/core/policy/defaults.ts";
import { parsePolicy, policyToDocument } from "../../src/core/policy/parse.ts";
import { TpsBudget } from "../../src/core/retry/budget.ts";
import { isRemoraError } from "../../src/core/errors.ts";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { createOutbound } from "../../src/core/pipeline.ts";
import { B1, B2, B3, endpoints, FakeUpstream, policy, sequence } from "./fake-upstream.ts";
import { yamlPolicy } from "./traffic-support.ts";

describe("TpsBudget (Linkerd's retry budget, Tower's TpsBudget)", () => {
  test("retry_ratio 0.2 without a floor: one retry per five requests", () => {
    const b = new TpsBudget({ retryRatio: 0.2, minRetriesPerSecond: 0, ttlMs: 10_000 });
    for (let i = 0; i < 4; i++) b.deposit(0);
    assert.equal(b.withdraw(0), false, "four requests do not earn a retry");
    b.deposit(0);
    assert.equal(b.withdraw(0), true);
    assert.equal(b.withdraw(0), false);
    for (let i = 0; i < 10; i++) b.deposit(0);
    assert.equal(b.withdraw(0), true);
    assert.equal(b.withdraw(0), true);
    assert.equal(b.withdraw(0), false);
  });

  test("min_retries_per_second x ttl retries are always there, even with no requests", () => {
    const b = new TpsBudget({ retryRatio: 0.2, minRetriesPerSecond: 10, ttlMs: 10_000 });
    let allowed = 0;
    while (b.withdraw(0)) allowed++;
    assert.equal(allowed, 100);
  });

  test("deposits and withdrawals leave the window after ttl", () => {
    const b = new TpsBudget({ retryRatio: 1, minRetriesPerSecond: 0, ttlMs: 10_000 });
    for (let i = 0; i < 3; i++) b.deposit(0);
    assert.equal(b.available(9_999), 3);
    assert.equal(b.available(10_000), 0, "the deposits expired");
    const r = new TpsBudget({ retryRatio: 0, minRetriesPerSecond: 1, ttlMs: 5_000 });
    while (r.withdraw(1_000));
    assert.equal(r.withdraw(5_999), false, "the withdrawals are still in the window");
    assert.equal(r.withdraw(6_000), true, "the reserve is back once they left it");
  });

  test("retry_ratio 0: only the reserve; a ratio above 1 lets retries exceed requests", () => {
    const none = new TpsBudget({ retryRatio: 0, minRetriesPerSecond: 0, ttlMs: 1_000 });
    for (let i = 0; i < 100; i++) none.deposit(0);
    assert.equal(none.withdraw(0), false);
    const lavish = new TpsBudget({ retryRatio: 2.5, minRetriesPerSecond: 0, ttlMs: 1_000 });
    lavish.deposit(0);
    lavish.deposit(0);
    let n = 0;
    while (lavish.withdraw(0)) n++;
    assert.equal(n, 5);
  });
});

/** The outbound path with every endpoint answering `status`, recording limit events. */
function failing(policies = [policy({ retryOn: "5xx", numRetries: 2 })], status = 503) {
  const clock = new FakeClock();
  const upstream = new FakeUpstream(clock);
  for (const a of [B1, B2, B3]) upstream.always(a, status);
  const limits: LimitEvent[] = [];
  const retries: number[] = [];
  const outbound = createOutbound(
    { policies, endpoints: { payments: endpoints(B1, B2, B3) } },
    {
      send: upstream.send,
      clock,
      // 0 jitter: no back-off, so a whole run happens at one instant unless the test moves time.
      random: sequence(0),
      onEvent: (e) => {
        if (e.type === "retry") retries.push(e.attempt);
      },
      onLimit: (e) => limits.push(e),
      defaultPolicy: (d) => policy({ destination: d }),
    },
  );
  const call = () => clock.run(outbound.handle(new Request("http://payments/charge")));
  return { clock, upstream, limits, retries, call };
}

describe("retry budget on the request path", () => {
  test("every endpoint failing: upstream attempts stay within requests x 1.2 + the floor", async () => {
    const h = failing();
    const requests = 1_000;
    for (let i = 0; i < requests; i++) assert.equal((await h.call()).status, 503);
    const floor = DEFAULT_RETRY_BUDGET.minRetriesPerSecond * (DEFAULT_RETRY_BUDGET.ttlMs / 1000);
    assert.ok(h.upstream.calls.length <= requests * 1.2 + floor, `${h.upstream.calls.length} attempts`);
    // Exactly: 0.2 x 1000 earned plus the 100 in reserve.
    assert.equal(h.retries.length, 300);
    assert.equal(h.upstream.calls.length, 1_300);
    const exhausted = h.limits.filter((e) => e.type === "retry-budget-exhausted");
    const fullyRetried = h.retries.filter((attempt) => attempt === 3).length;
    assert.equal(exhausted.length, requests - fullyRetried, "every other request had one retry refused");
  });

  test("without the budget (ratio 1000) the same storm triples the load", async () => {
    const h = failing([yamlPolicy("route: {destination: payments, retry_policy: {retry_on: 5xx, num_retries: 2}}\nretry_budget: {retry_ratio: 1000}")]);
    for (let i = 0; i < 1_000; i++) await h.call();
    assert.equal(h.upstream.calls.length, 3_000);
    assert.equal(h.limits.length, 0);
  });

  test("a refused retry is not sent: the last attempt's own answer goes back", async () => {
    const p = yamlPolicy("route: {destination: payments, retry_policy: {retry_on: 5xx, num_retries: 2}}\nretry_budget: {retry_ratio: 0, min_retries_per_second: 0}");
    const h = failing([p], 502);
    const res = await h.call();
    assert.equal(res.status, 502);
    assert.match(await res.text(), /^502 from 192\.0\.2\.\d:15006$/);
    assert.equal(h.upstream.calls.length, 1);
    assert.deepEqual(h.limits, [{ type: "retry-budget-exhausted", requestId: h.limits[0]?.requestId ?? "", destination: "payments", attempt: 2 }]);
  });

  test("a refused retry after a local failure answers the failure, as without retries", async () => {
    const p = yamlPolicy("route: {destination: payments, retry_policy: {retry_on: 5xx}}\nretry_budget: {retry_ratio: 0, min_retries_per_second: 0}");
    const h = failing([p]);
    h.upstream.on(B1, "connect-failure");
    const res = await h.call();
    assert.equal(res.status, 503);
    assert.match(await res.text(), /reset reason: connection failure/);
    assert.equal(h.upstream.calls.length, 1);
  });

  test("low traffic keeps its retries: the floor covers a failing replica at a few requests per second", async () => {
    const h = failing([policy({ retryOn: "5xx", numRetries: 2 })]);
    h.upstream.always(B2, 200);
    h.upstream.always(B3, 200);
    let ok = 0;
    for (let i = 0; i < 300; i++) {
      if ((await h.call()).status === 200) ok++;
      h.clock.advance(200); // 5 requests per second for a minute
    }
    assert.equal(ok, 300);
    assert.equal(h.limits.length, 0);
  });

  test("sustained failure over time: retries stay within ratio x requests + floor x (time + ttl)", async () => {
    const h = failing();
    const seconds = 40;
    const perSecond = 30;
    for (let s = 0; s < seconds; s++) {
      for (let i = 0; i < perSecond; i++) await h.call();
      h.clock.advance(1_000);
    }
    const requests = seconds * perSecond;
    const bound = 0.2 * requests + 10 * (seconds + 10);
    assert.ok(h.retries.length <= bound, `${h.retries.length} retries, bound ${bound}`);
    assert.ok(h.retries.length >= 0.2 * requests, "the budget still lets the earned retries through");
  });

  test("retries of an injected fault abort are free: that attempt never reached the destination", async () => {
    const p = yamlPolicy(`
route:
  destination: payments
  retry_policy: {retry_on: 5xx, num_retries: 2}
  rules: [{name: chaos, fault: {abort: {status: 503}}}]
retry_budget: {retry_ratio: 0, min_retries_per_second: 0}
`);
    const h = failing([p]);
    h.upstream.always(B2, 200);
    assert.equal((await h.call()).status, 200);
    assert.deepEqual(h.upstream.calls.map((c) => c.address), [B2]);
    assert.equal(h.limits.length, 0);
  });

  test("the budget is per destination and survives a config swap that keeps it", async () => {
    const p = yamlPolicy("route: {destination: payments, retry_policy: {retry_on: 5xx, num_retries: 1}}\nretry_budget: {retry_ratio: 0, min_retries_per_second: 1, ttl: 1s}");
    const h = failing([p]);
    await h.call();
    assert.equal(h.retries.length, 1, "the one retry of the reserve");
    await h.call();
    assert.equal(h.retries.length, 1, "spent");
  });

  test("refusals are counted as remora_retries_budget_exhausted_total{destination}", () => {
    const registry = new Registry();
    const m = createMeshMetrics(registry);
    recordLimitEvent(m, { type: "retry-budget-exhausted", requestId: "r1", destination: "payments", attempt: 2 });
    recordLimitEvent(m, { type: "retry-budget-exhausted", requestId: "r2", destination: "payments", attempt: 3 });
    assert.match(registry.expose(), /^remora_retries_budget_exhausted_total\{destination="payments"\} 2$/m);
  });
});

describe("retry_budget in policy documents", () => {
  const base = { route: { destination: "payments" } };

  test("absent: not in the model (the request path applies Linkerd's defaults)", () => {
    assert.equal(parsePolicy(base).retryBudget, undefined);
    assert.deepEqual(DEFAULT_RETRY_BUDGET, { retryRatio: 0.2, minRetriesPerSecond: 10, ttlMs: 10_000 });
  });

  test("empty or null: the defaults, written out; fields override them", () => {
    assert.deepEqual(parsePolicy({ ...base, retry_budget: null }).retryBudget, DEFAULT_RETRY_BUDGET);
    assert.deepEqual(parsePolicy({ ...base, retry_budget: {} }).retryBudget, DEFAULT_RETRY_BUDGET);
    assert.deepEqual(parsePolicy({ ...base, retry_budget: { retry_ratio: 0.5, min_retries_per_second: 3, ttl: "30s" } }).retryBudget, {
      retryRatio: 0.5,
      minRetriesPerSecond: 3,
      ttlMs: 30_000,
    });
  });

  test("round-trips through policyToDocument", () => {
    const p = parsePolicy({ ...base, retry_budget: { retry_ratio: 0.1, ttl: "1m" } });
    assert.deepEqual(policyToDocument(p).retry_budget, { retry_ratio: 0.1, min_retries_per_second: 10, ttl: "1m" });
    assert.deepEqual(parsePolicy(policyToDocument(p)), p);
  });

  const rejects: [unknown, RegExp][] = [
    [{ retry_ratio: -0.1 }, /^p\.yaml: retry_budget\.retry_ratio: -0\.1 is not a ratio from 0 to 1000$/],
    [{ retry_ratio: "20%" }, /^p\.yaml: retry_budget\.retry_ratio: expected a ratio like 0\.2 but got "20%"$/],
    [{ min_retries_per_second: 1.5 }, /^p\.yaml: retry_budget\.min_retries_per_second: expected a whole number but got 1\.5$/],
    [{ ttl: "2m" }, /^p\.yaml: retry_budget\.ttl: 2m is outside 1s to 1m/],
    [{ ttl: "500ms" }, /^p\.yaml: retry_budget\.ttl: 500ms is outside 1s to 1m/],
    [{ budget_percent: 20 }, /^p\.yaml: retry_budget\.budget_percent: unknown field$/],
    [{ retry_ration: 0.2 }, /^p\.yaml: retry_budget\.retry_ration: unknown field, did you mean "retry_ratio"\?$/],
  ];
  for (const [doc, message] of rejects) {
    test(`rejects ${JSON.stringify(doc)} naming the field`, () => {
      assert.throws(
        () => parsePolicy({ ...base, retry_budget: doc }, "p.yaml"),
        (e: unknown) => isRemoraError(e, "ERR_POLICY_INVALID") && message.test(e.message),
      );
    });
  }
});
