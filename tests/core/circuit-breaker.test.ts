import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { isRemoraError } from "../../src/core/errors.ts";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { createMeshMetrics, recordLimitEvent } from "../../src/core/metrics/mesh-metrics.ts";
import { Registry } from "../../src/core/metrics/registry.ts";
import type { LimitEvent } from "../../src/core/pipeline/circuit-breaker.ts";
import { createOutbound } from "../../src/core/pipeline.ts";
import { DEFAULT_CIRCUIT_BREAKERS, DEFAULT_RETRY_BUDGET } from "../../src/core/policy/defaults.ts";
import { parsePolicies, parsePolicy, policyToDocument } from "../../src/core/policy/parse.ts";
import type { Policy } from "../../src/core/policy/types.ts";
import { B1, B2, B3, endpoints, FakeUpstream, policy, sequence } from "./fake-upstream.ts";
import { yamlPolicy } from "./traffic-support.ts";

/** Every endpoint answers `status` after `delayMs` on the fake clock; the peak concurrency is kept. */
function bed(p: Policy, o: { status?: number; delayMs?: number; addresses?: string[] } = {}) {
  const clock = new FakeClock();
  const upstream = new FakeUpstream(clock);
  let inFlight = 0;
  let peak = 0;
  const perEndpoint = new Map<string, number>();
  let peakPerEndpoint = 0;
  const addresses = o.addresses ?? [B1, B2, B3];
  for (const address of addresses) {
    upstream.always(address, async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      const n = (perEndpoint.get(address) ?? 0) + 1;
      perEndpoint.set(address, n);
      peakPerEndpoint = Math.max(peakPerEndpoint, n);
      try {
        await clock.sleep(o.delayMs ?? 100);
      } finally {
        inFlight--;
        perEndpoint.set(address, (perEndpoint.get(address) ?? 1) - 1);
      }
      return new Response(`${o.status ?? 200} from ${address}`, { status: o.status ?? 200 });
    });
  }
  const limits: LimitEvent[] = [];
  const outbound = createOutbound(
    { policies: [p], endpoints: { payments: endpoints(...addresses) } },
    { send: upstream.send, clock, random: sequence(0), onLimit: (e) => limits.push(e), defaultPolicy: (d) => policy({ destination: d }) },
  );
  /** `n` requests at the same instant, driven to completion. */
  const burst = (n: number) => clock.run(Promise.all(Array.from({ length: n }, () => outbound.handle(new Request("http://payments/charge")))));
  return { clock, upstream, limits, burst, peak: () => peak, peakPerEndpoint: () => peakPerEndpoint };
}

const overflowOf = (responses: Response[], breaker: string) => responses.filter((r) => r.status === 503 && r.headers.get("x-remora-overflow") === breaker);

describe("circuit breakers on the request path", () => {
  test("max_requests: requests beyond it answer 503 x-remora-overflow: max_requests at once", async () => {
    const h = bed(yamlPolicy("route: {destination: payments}\ncircuit_breakers: {max_requests: 5}"));
    const responses = await h.burst(20);
    assert.equal(responses.filter((r) => r.status === 200).length, 5);
    const over = overflowOf(responses, "max_requests");
    assert.equal(over.length, 15);
    assert.match(await over[0]!.text(), /reset reason: overflow \(remora: circuit breaker max_requests of "payments" is full: 5 requests in flight, limit 5\)/);
    assert.equal(h.peak(), 5);
    assert.equal(h.upstream.calls.length, 5);
    assert.deepEqual(new Set(h.limits.map((e) => e.type === "overflow" && e.breaker)), new Set(["max_requests"]));
    assert.equal(h.limits.length, 15);
  });

  test("the slots come back: after the burst the next requests go through", async () => {
    const h = bed(yamlPolicy("route: {destination: payments}\ncircuit_breakers: {max_requests: 2}"));
    await h.burst(4);
    const again = await h.burst(2);
    assert.deepEqual(again.map((r) => r.status), [200, 200]);
  });

  test("max_connections queues attempts up to max_pending_requests; beyond, 503 max_pending_requests", async () => {
    const h = bed(yamlPolicy("route: {destination: payments}\ncircuit_breakers: {max_connections: 2, max_pending_requests: 3}"));
    const responses = await h.burst(10);
    assert.equal(h.peak(), 2, "never more than max_connections attempts at the upstream");
    assert.equal(responses.filter((r) => r.status === 200).length, 5, "2 at once, 3 after waiting");
    assert.equal(overflowOf(responses, "max_pending_requests").length, 5);
    // The queued ones waited for a connection: three 100 ms rounds at two at a time.
    assert.equal(h.clock.now(), 300);
  });

  test("max_pending_requests: 0 refuses at once when every connection is busy", async () => {
    const h = bed(yamlPolicy("route: {destination: payments}\ncircuit_breakers: {max_connections: 1, max_pending_requests: 0}"));
    const responses = await h.burst(3);
    assert.deepEqual(responses.map((r) => r.status), [200, 503, 503]);
    assert.equal(overflowOf(responses, "max_pending_requests").length, 2);
  });

  test("a pending attempt is bounded by the route timeout: 504, and it leaves the queue", async () => {
    const h = bed(yamlPolicy("route: {destination: payments, timeout: 250ms}\ncircuit_breakers: {max_connections: 1}"), { delayMs: 100 });
    const responses = await h.burst(3);
    assert.deepEqual(responses.map((r) => r.status), [200, 200, 504]);
    const later = await h.burst(1);
    assert.equal(later[0]?.status, 200, "nothing is left holding a connection");
  });

  test("max_requests_per_endpoint: an attempt to a busy endpoint overflows and is not retried", async () => {
    const p = yamlPolicy("route: {destination: payments, retry_policy: {retry_on: 5xx, num_retries: 2}}\ncircuit_breakers: {max_requests_per_endpoint: 1}");
    const h = bed(p, { addresses: [B1, B2] });
    const responses = await h.burst(3);
    assert.deepEqual(responses.map((r) => r.status), [200, 200, 503]);
    assert.equal(responses[2]?.headers.get("x-remora-overflow"), "max_requests_per_endpoint");
    assert.equal(h.upstream.calls.length, 2, "the overflow was not retried");
    assert.equal(h.peakPerEndpoint(), 1);
    assert.deepEqual(
      h.limits.map((e) => (e.type === "overflow" ? [e.breaker, e.endpoint] : [])),
      [["max_requests_per_endpoint", B1]],
    );
  });

  test("every endpoint failing slowly: attempts bounded by the budget, load bounded by max_requests", async () => {
    const p = yamlPolicy(`
route:
  destination: payments
  retry_policy: {retry_on: 5xx, num_retries: 2}
circuit_breakers: {max_requests: 10}
`);
    const h = bed(p, { status: 503, delayMs: 50 });
    let requests = 0;
    for (let wave = 0; wave < 40; wave++) {
      await h.burst(25);
      requests += 25;
    }
    assert.ok(h.peak() <= 10, `peak upstream concurrency ${h.peak()}`);
    const floor = DEFAULT_RETRY_BUDGET.minRetriesPerSecond * ((h.clock.now() + DEFAULT_RETRY_BUDGET.ttlMs) / 1000);
    assert.ok(h.upstream.calls.length <= requests * 1.2 + floor, `${h.upstream.calls.length} attempts for ${requests} requests`);
    assert.ok(h.limits.some((e) => e.type === "overflow" && e.breaker === "max_requests"));
  });

  test("defaults: Envoy's 1024 requests in flight", async () => {
    assert.deepEqual(DEFAULT_CIRCUIT_BREAKERS, { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024 });
    const h = bed(policy(), { delayMs: 10 });
    const responses = await h.burst(1025);
    assert.equal(overflowOf(responses, "max_requests").length, 1);
    assert.equal(h.peak(), 1024);
  });

  test("overflows are counted as remora_overflow_total{destination,breaker}", () => {
    const registry = new Registry();
    const m = createMeshMetrics(registry);
    recordLimitEvent(m, { type: "overflow", requestId: "r1", destination: "payments", breaker: "max_requests" });
    recordLimitEvent(m, { type: "overflow", requestId: "r2", destination: "payments", breaker: "max_requests" });
    recordLimitEvent(m, { type: "overflow", requestId: "r3", destination: "payments", breaker: "max_requests_per_endpoint", endpoint: B1 });
    const text = registry.expose();
    assert.match(text, /^remora_overflow_total\{destination="payments",breaker="max_requests"\} 2$/m);
    assert.match(text, /^remora_overflow_total\{destination="payments",breaker="max_requests_per_endpoint"\} 1$/m);
  });
});

describe("circuit_breakers in policy documents", () => {
  const base = { route: { destination: "payments" } };

  test("absent: not in the model; empty: Envoy's defaults; fields override them", () => {
    assert.equal(parsePolicy(base).circuitBreakers, undefined);
    assert.deepEqual(parsePolicy({ ...base, circuit_breakers: {} }).circuitBreakers, DEFAULT_CIRCUIT_BREAKERS);
    assert.deepEqual(parsePolicy({ ...base, circuit_breakers: { max_requests: 100, max_requests_per_endpoint: 20 } }).circuitBreakers, {
      maxConnections: 1024,
      maxPendingRequests: 1024,
      maxRequests: 100,
      maxRequestsPerEndpoint: 20,
    });
  });

  test("policies/payments-hardened.yaml: the seed with both limits written out", () => {
    const [p] = parsePolicies(readFileSync(new URL("../../policies/payments-hardened.yaml", import.meta.url), "utf8"), "policies/payments-hardened.yaml");
    assert.deepEqual(p?.circuitBreakers, { maxConnections: 100, maxPendingRequests: 100, maxRequests: 200, maxRequestsPerEndpoint: 50 });
    assert.deepEqual(p?.retryBudget, DEFAULT_RETRY_BUDGET);
    assert.equal(p?.route.retry.numRetries, 2);
  });

  test("round-trips through policyToDocument", () => {
    const p = parsePolicy({ ...base, circuit_breakers: { max_connections: 8, max_pending_requests: 0, max_requests_per_endpoint: 4 } });
    assert.deepEqual(parsePolicy(policyToDocument(p)), p);
  });

  const rejects: [unknown, RegExp][] = [
    [{ max_requests: 0 }, /^p\.yaml: circuit_breakers\.max_requests: 0 is less than the minimum of 1$/],
    [{ max_connections: "lots" }, /^p\.yaml: circuit_breakers\.max_connections: expected a whole number but got "lots"$/],
    [{ max_pending_requests: -1 }, /^p\.yaml: circuit_breakers\.max_pending_requests: -1 is less than the minimum of 0$/],
    [{ max_retries: 3 }, /^p\.yaml: circuit_breakers\.max_retries: unknown field/],
    [{ max_request: 3 }, /^p\.yaml: circuit_breakers\.max_request: unknown field, did you mean "max_requests"\?$/],
  ];
  for (const [doc, message] of rejects) {
    test(`rejects ${JSON.stringify(doc)} naming the field`, () => {
      assert.throws(
        () => parsePolicy({ ...base, circuit_breakers: doc }, "p.yaml"),
        (e: unknown) => isRemoraError(e, "ERR_POLICY_INVALID") && message.test(e.message),
      );
    });
  }
});
