import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { harness } from "./fake-upstream.ts";
import { yamlPolicy } from "./traffic-support.ts";
import { TokenBucket } from "../../src/core/pipeline/rate-limit.ts";

describe("local rate limiting", () => {
  test("a destination-wide bucket: burst passes, then 429 with retry-after, refilled on the clock", async () => {
    const h = harness({ policies: [yamlPolicy("route: {destination: payments, rate_limit: {requests_per_second: 1, burst: 2}}")] });
    assert.equal((await h.call()).status, 200);
    assert.equal((await h.call()).status, 200);
    const limited = await h.call();
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "1");
    assert.equal(await limited.text(), "local_rate_limited\n");
    assert.equal(h.upstream.calls.length, 2);
    h.clock.advance(1_000);
    assert.equal((await h.call()).status, 200);
    assert.equal((await h.call()).status, 429);
    assert.deepEqual(h.eventsOf("rate-limited").map((e) => [e.rule, e.retryAfterS]), [[undefined, 1], [undefined, 1]]);
  });

  test("a rule's bucket limits only that rule's requests; retry-after follows a slow refill", async () => {
    const h = harness({
      policies: [
        yamlPolicy(`
route:
  destination: payments
  rules:
    - name: slow
      match: [{path: {prefix: /slow}}]
      rate_limit: {requests_per_second: 0.2}
    - name: rest
`),
      ],
    });
    assert.equal((await h.call("http://payments/slow")).status, 200);
    const res = await h.call("http://payments/slow");
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("retry-after"), "5");
    for (let i = 0; i < 20; i++) assert.equal((await h.call("http://payments/fast")).status, 200);
    assert.deepEqual(h.eventsOf("rate-limited").map((e) => e.rule), ["slow"]);
  });

  test("TokenBucket: starts full, refills at the rate, never above burst", () => {
    const b = new TokenBucket({ requestsPerSecond: 10, burst: 3 }, 0);
    for (let i = 0; i < 3; i++) {
      assert.equal(b.available(0), true);
      b.take();
    }
    assert.equal(b.available(0), false);
    assert.equal(b.available(99), false);
    assert.equal(b.available(100), true);
    assert.equal(b.available(60_000), true);
    for (let i = 0; i < 3; i++) b.take();
    assert.equal(b.available(60_000), false, "burst caps the refill");
  });
});
