import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { B1, B2, harness } from "./fake-upstream.ts";
import { seeded, yamlPolicy } from "./traffic-support.ts";
import { createMeshMetrics, recordEvent } from "../../src/core/metrics/mesh-metrics.ts";
import { Registry } from "../../src/core/metrics/registry.ts";
import type { PolicyDocument } from "../../src/core/policy/schema.ts";
import { parsePolicy } from "../../src/core/policy/parse.ts";

const withFault = (fault: string, retry = "{retry_on: 5xx, num_retries: 2}") =>
  yamlPolicy(`
route:
  destination: payments
  retry_policy: ${retry}
  rules:
    - name: chaos
      fault: ${fault}
`);

/** The seed policy (policies/payments.yaml) with one rule injecting `fault`. */
function seedWithFault(fault: unknown) {
  const seed = parse(readFileSync(new URL("../../policies/payments.yaml", import.meta.url), "utf8")) as PolicyDocument;
  seed.route.rules = [{ name: "chaos", fault: fault as NonNullable<PolicyDocument["route"]["rules"]>[number]["fault"] }];
  return parsePolicy(seed);
}

describe("fault injection", () => {
  test("a fixed delay holds the request on the clock before the first attempt", async () => {
    const h = harness({ policies: [withFault("{delay: {fixed: 100ms}}")] });
    const res = await h.call();
    assert.equal(res.status, 200);
    assert.equal(h.upstream.calls[0]?.atMs, 100);
    assert.equal(h.eventsOf("response")[0]?.durationMs, 100);
    assert.deepEqual(h.eventsOf("fault").map((e) => [e.kind, e.delayMs, e.rule]), [["delay", 100, "chaos"]]);
  });

  test("delay percent: about 10% of 2,000 seeded requests are delayed", async () => {
    const h = harness({ policies: [withFault("{delay: {fixed: 1s, percent: 10}}")], random: seeded(3) });
    for (let i = 0; i < 2_000; i++) await h.call();
    const delayed = h.eventsOf("fault").length / 20;
    assert.ok(Math.abs(delayed - 10) <= 2, `${delayed}% delayed`);
    assert.equal(h.clock.now(), h.eventsOf("fault").length * 1_000);
  });

  test("abort without retries: the caller sees the status and Envoy's body, nothing reaches the endpoint", async () => {
    const h = harness({ policies: [withFault("{abort: {status: 503}}", "{num_retries: 0}")] });
    const res = await h.call();
    assert.equal(res.status, 503);
    assert.equal(await res.text(), "fault filter abort\n");
    assert.equal(h.upstream.calls.length, 0);
  });

  test("50% aborts with the seed's retry policy: every request succeeds, the faults and retries are counted", async () => {
    const h = harness({ policies: [seedWithFault({ abort: { status: 503, percent: 50 } })], random: seeded(21) });
    const registry = new Registry();
    const metrics = createMeshMetrics(registry);
    for (let i = 0; i < 1_000; i++) assert.equal((await h.call()).status, 200);
    for (const e of h.events) recordEvent(metrics, e);
    const aborts = h.eventsOf("fault").length;
    assert.ok(aborts > 420 && aborts < 580, `${aborts} aborts`);
    assert.equal(h.eventsOf("retry").length, aborts, "each injected abort is retried once");
    assert.equal(h.upstream.calls.length, 1_000, "the endpoints answered each request once");
    assert.equal(metrics.faultsInjected.get({ destination: "payments", rule: "chaos", kind: "abort" }), aborts);
    assert.equal(metrics.retries.get({ destination: "payments" }), aborts);
    assert.equal(h.eventsOf("eject").length, 0, "injected aborts do not count against the endpoints");
  });

  test("an aborted first attempt is retried on another endpoint (previous hosts)", async () => {
    const h = harness({ policies: [withFault("{abort: {status: 503}}")] });
    assert.equal((await h.call()).status, 200);
    assert.deepEqual(h.upstream.calls.map((c) => c.address), [B2]);
    assert.deepEqual(h.eventsOf("attempt-failed").map((e) => [e.endpoint, e.status]), [[B1, 503]]);
  });

  test("match_headers: only requests with the header are faulted", async () => {
    const h = harness({ policies: [withFault('{abort: {status: 500}, match_headers: {x-fault: {exact: "1"}}}', "{num_retries: 0}")] });
    assert.equal((await h.call("http://payments/x")).status, 200);
    assert.equal((await h.call("http://payments/x", { headers: { "x-fault": "1" } })).status, 500);
    assert.equal((await h.call("http://payments/x", { headers: { "x-fault": "2" } })).status, 200);
    assert.equal(h.eventsOf("fault").length, 1);
  });
});
