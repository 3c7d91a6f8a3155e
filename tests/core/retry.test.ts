import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { RetryOn, RetryPolicy } from "../../src/core/policy/types.ts";
import { backoffCeilingMs, backoffMs } from "../../src/core/retry/backoff.ts";
import { isRetriable } from "../../src/core/retry/classify.ts";
import type { AttemptOutcome } from "../../src/core/retry/outcome.ts";
import type { UpstreamErrorKind } from "../../src/core/upstream.ts";
import { B1, B2, B3, endpoints, harness, policy, type Reply, sequence } from "./fake-upstream.ts";

function retryPolicy(on: string, codes: number[] = []): RetryPolicy {
  return { retryOn: new Set(on.split(",").filter((s) => s !== "") as RetryOn[]), numRetries: 2, retriableStatusCodes: codes, backoff: { baseMs: 25, maxMs: 250 } };
}
const status = (s: number): AttemptOutcome => ({ kind: "status", status: s });
const local = (kind: UpstreamErrorKind): AttemptOutcome => ({ kind });

describe("retry_on classification (Envoy x-envoy-retry-on)", () => {
  const LOCAL: UpstreamErrorKind[] = ["connect-failure", "tls", "reset", "refused-stream", "timeout", "overflow"];
  // condition -> outcomes it retries; everything else in `probe` must not be retried.
  const table: [string, AttemptOutcome[]][] = [
    ["5xx", [status(500), status(501), status(502), status(503), status(504), status(599), local("connect-failure"), local("tls"), local("reset"), local("refused-stream"), local("timeout")]],
    ["gateway-error", [status(502), status(503), status(504), local("connect-failure"), local("tls"), local("reset"), local("refused-stream"), local("timeout")]],
    ["reset", [local("connect-failure"), local("tls"), local("reset"), local("refused-stream")]],
    ["connect-failure", [local("connect-failure"), local("tls")]],
    ["refused-stream", [local("refused-stream")]],
    ["retriable-4xx", [status(409)]],
    ["retriable-status-codes", [status(418), status(503)]],
    ["", []],
  ];
  const probe: AttemptOutcome[] = [200, 204, 301, 400, 404, 409, 418, 429, 500, 501, 502, 503, 504, 599].map(status).concat(LOCAL.map(local));
  const key = (o: AttemptOutcome): string => (o.kind === "status" ? `status ${o.status}` : o.kind);

  for (const [condition, retried] of table) {
    test(`retry_on: ${condition || "(nothing)"}`, () => {
      const p = retryPolicy(condition, [418, 503]);
      const expected = new Set(retried.map(key));
      for (const o of probe) assert.equal(isRetriable(o, p), expected.has(key(o)), `${condition} on ${key(o)}`);
    });
  }

  test("retriable_status_codes alone does nothing without the retriable-status-codes condition", () => {
    assert.equal(isRetriable(status(418), retryPolicy("5xx", [418])), false);
    assert.equal(isRetriable(status(503), retryPolicy("retriable-status-codes", [])), false);
  });

  test("overflow is never retried, whatever retry_on says", () => {
    assert.equal(isRetriable(local("overflow"), retryPolicy("5xx,gateway-error,reset,connect-failure,refused-stream,retriable-4xx,retriable-status-codes", [503])), false);
  });
});

describe("back-off (fully jittered exponential)", () => {
  const b = { baseMs: 25, maxMs: 250 };
  test("retry N waits in [0, min(max, (2^N - 1) x base))", () => {
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => backoffCeilingMs(n, b)), [25, 75, 175, 250, 250]);
    assert.deepEqual([1, 2, 3, 4].map((n) => backoffMs(n, b, () => 0)), [0, 0, 0, 0]);
    assert.deepEqual([1, 2, 3, 4].map((n) => backoffMs(n, b, () => 0.5)), [12, 37, 87, 125]);
    assert.deepEqual([1, 2, 3, 4].map((n) => backoffMs(n, b, () => 0.999999)), [24, 74, 174, 249]);
    assert.equal(backoffMs(2, b, () => 1), 74, "a Random returning 1 still stays below the ceiling");
  });

  test("the pipeline waits the jittered back-off between attempts, using the injected Random and Clock", async () => {
    // Random is used by back-off only (round robin ignores it): 0.5 -> 12 ms, then 37 ms.
    const h = harness({ endpoints: { payments: endpoints(B1, B2, B3) }, random: sequence(0.5) });
    h.upstream.always(B1, 503).always(B2, 503).always(B3, 503);
    const res = await h.call();
    assert.equal(res.status, 503);
    assert.deepEqual(h.upstream.calls.map((c) => c.atMs), [0, 12, 49]);
    assert.deepEqual(h.eventsOf("retry").map((e) => [e.attempt, e.backoffMs, e.reason]), [[2, 12, "status 503"], [3, 37, "status 503"]]);
  });
});

describe("num_retries", () => {
  for (const [n, attempts] of [[0, 1], [1, 2], [2, 3]] as const) {
    test(`num_retries ${n} makes at most ${attempts} attempt(s)`, async () => {
      const h = harness({ policies: [policy({ numRetries: n })], endpoints: { payments: endpoints(B1, B2, B3) } });
      for (const a of [B1, B2, B3]) h.upstream.always(a, 500);
      const res = await h.call();
      assert.equal(res.status, 500, "the final upstream response is returned as is");
      assert.equal(await res.text(), `500 from ${h.upstream.calls.at(-1)?.address}`);
      assert.equal(h.upstream.calls.length, attempts);
      const [final] = h.eventsOf("response");
      assert.equal(final?.attempts, attempts);
    });
  }

  test("a success stops retrying", async () => {
    const h = harness();
    h.upstream.on(B1, 500);
    const res = await h.call();
    assert.equal(res.status, 200);
    assert.equal(h.upstream.calls.length, 2);
  });

  test("a response retry_on does not cover is returned at once", async () => {
    const h = harness({ policies: [policy({ retryOn: "connect-failure" })] });
    h.upstream.on(B1, 500);
    const res = await h.call();
    assert.equal(res.status, 500);
    assert.equal(h.upstream.calls.length, 1);
    assert.equal(h.eventsOf("attempt-failed").length, 0);
  });

  test("local failures on every attempt answer 503 naming the last endpoint and the failure", async () => {
    const h = harness({ policies: [policy({ retryOn: "connect-failure", numRetries: 1 })] });
    h.upstream.always(B1, "connect-failure").always(B2, "connect-failure");
    const res = await h.call();
    assert.equal(res.status, 503);
    const text = await res.text();
    assert.match(text, /^upstream connect error or disconnect\/reset before headers\. reset reason: connection failure/);
    assert.ok(text.includes(B2) && text.includes("connect-failure"), text);
    assert.deepEqual(h.eventsOf("attempt-failed").map((e) => [e.endpoint, e.kind]), [[B1, "connect-failure"], [B2, "connect-failure"]]);
  });

  test("a local failure retry_on does not cover is not retried", async () => {
    const h = harness({ policies: [policy({ retryOn: "connect-failure" })] });
    h.upstream.on(B1, "reset");
    const res = await h.call();
    assert.equal(res.status, 503);
    assert.match(await res.text(), /reset reason: connection termination/);
    assert.equal(h.upstream.calls.length, 1);
  });

  test("overflow is not retried even under 5xx", async () => {
    const h = harness({ policies: [policy({ retryOn: "5xx" })] });
    h.upstream.on(B1, "overflow");
    const res = await h.call();
    assert.equal(res.status, 503);
    assert.match(await res.text(), /reset reason: overflow/);
    assert.equal(h.upstream.calls.length, 1);
  });

  test("each retry_on condition drives the pipeline: retried when covered, returned when not", async () => {
    const cases: [string, Reply, boolean][] = [
      ["5xx", 500, true],
      ["gateway-error", 502, true],
      ["gateway-error", 500, false],
      ["reset", "reset", true],
      ["reset", 503, false],
      ["connect-failure", "connect-failure", true],
      ["connect-failure", "tls", true],
      ["connect-failure", "reset", false],
      ["refused-stream", "refused-stream", true],
      ["refused-stream", "reset", false],
      ["retriable-4xx", 409, true],
      ["retriable-4xx", 400, false],
      ["retriable-status-codes", 418, true],
      ["retriable-status-codes", 503, false],
    ];
    for (const [on, reply, retried] of cases) {
      const h = harness({ policies: [policy({ retryOn: on, retriableStatusCodes: [418] })] });
      h.upstream.on(B1, reply);
      await h.call();
      assert.equal(h.upstream.calls.length, retried ? 2 : 1, `${on} on ${String(reply)}`);
    }
  });
});

describe("previous hosts", () => {
  test("a retry prefers endpoints this request has not tried", async () => {
    // random balancing with a Random that always points at B1: retries still move on.
    const h = harness({ policies: [policy({ loadBalancer: "random" })], endpoints: { payments: endpoints(B1, B2, B3) }, random: sequence(0) });
    for (const a of [B1, B2, B3]) h.upstream.always(a, 503);
    await h.call();
    assert.deepEqual(h.upstream.calls.map((c) => c.address), [B1, B2, B3]);
  });

  test("falls back to a tried endpoint once every available one was tried", async () => {
    const h = harness({ endpoints: { payments: endpoints(B1, B2) } });
    h.upstream.always(B1, 503).always(B2, 503);
    await h.call();
    assert.deepEqual(h.upstream.calls.map((c) => c.address), [B1, B2, B1]);
  });
});

describe("per_try_timeout", () => {
  test("a slow attempt is cut at per_try_timeout and retried under 5xx", async () => {
    const h = harness({ policies: [policy({ retryOn: "5xx", perTryTimeoutMs: 250 })] });
    h.upstream.on(B1, "hang");
    const res = await h.call();
    assert.equal(res.status, 200);
    assert.deepEqual(h.upstream.calls.map((c) => [c.address, c.atMs]), [[B1, 0], [B2, 250]]);
    assert.equal(h.upstream.calls[0]?.signal.aborted, true, "the attempt's signal was aborted");
    const [failed] = h.eventsOf("attempt-failed");
    assert.equal(failed?.kind, "timeout");
    assert.equal(failed?.durationMs, 250);
  });

  test("is retried under gateway-error", async () => {
    const h = harness({ policies: [policy({ retryOn: "gateway-error", perTryTimeoutMs: 100 })] });
    h.upstream.on(B1, "hang");
    assert.equal((await h.call()).status, 200);
    assert.equal(h.upstream.calls.length, 2);
  });

  test("is not retried under connect-failure alone and answers 504", async () => {
    const h = harness({ policies: [policy({ retryOn: "connect-failure,reset", perTryTimeoutMs: 250 })] });
    h.upstream.on(B1, "hang");
    const res = await h.call();
    assert.equal(res.status, 504);
    assert.match(await res.text(), /upstream request timeout/);
    assert.equal(h.upstream.calls.length, 1);
    assert.equal(h.clock.now(), 250);
  });

  test("does not cut a response that arrived in time", async () => {
    const h = harness({ policies: [policy({ perTryTimeoutMs: 250 })] });
    h.upstream.on(B1, { delayMs: 249, then: 200 });
    const res = await h.call();
    assert.equal(res.status, 200);
    assert.equal(h.upstream.calls.length, 1);
    assert.equal(h.clock.pending(), 0, "no timer is left behind");
  });

  test("a per-try timeout not below the route timeout is ignored (Envoy)", async () => {
    const h = harness({ policies: [policy({ perTryTimeoutMs: 1000, timeoutMs: 1000 })] });
    h.upstream.on(B1, "hang");
    const res = await h.call();
    assert.equal(res.status, 504);
    assert.match(await res.text(), /route timeout of 1000 ms/);
    assert.equal(h.upstream.calls.length, 1);
  });
});

describe("route timeout", () => {
  test("expiry answers 504 and is never retried", async () => {
    const h = harness({ policies: [policy({ timeoutMs: 500, retryOn: "5xx,gateway-error,reset" })] });
    h.upstream.always(B1, "hang");
    const res = await h.call();
    assert.equal(res.status, 504);
    assert.match(await res.text(), /^upstream request timeout/);
    assert.equal(h.upstream.calls.length, 1);
    assert.equal(h.clock.now(), 500);
    assert.equal(h.eventsOf("retry").length, 0);
    assert.equal(h.eventsOf("response")[0]?.status, 504);
  });

  test("bounds all attempts and back-off together", async () => {
    // Each try times out at 200 ms; back-off 0-24 then 0-74 ms (Random 0.999 -> 24, 74).
    const h = harness({ policies: [policy({ timeoutMs: 450, perTryTimeoutMs: 200, retryOn: "5xx" })], random: sequence(0.999), endpoints: { payments: endpoints(B1, B2, B3) } });
    for (const a of [B1, B2, B3]) h.upstream.always(a, "hang");
    const res = await h.call();
    assert.equal(res.status, 504);
    assert.equal(h.clock.now(), 450, "answered exactly at the route timeout");
    assert.deepEqual(h.upstream.calls.map((c) => c.atMs), [0, 224]);
  });

  test("expiring during back-off ends the request at once", async () => {
    const h = harness({ policies: [policy({ timeoutMs: 100, backoff: { baseMs: 1000, maxMs: 10_000 } })], random: sequence(0.5) });
    h.upstream.always(B1, 503).always(B2, 503);
    const res = await h.call();
    assert.equal(res.status, 504);
    assert.equal(h.clock.now(), 100);
    assert.equal(h.upstream.calls.length, 1);
    assert.equal(h.clock.pending(), 0, "the back-off timer was cancelled");
  });

  test("0 disables the route timeout", async () => {
    const h = harness({ policies: [policy({ timeoutMs: 0 })] });
    h.upstream.on(B1, { delayMs: 3_600_000, then: 200 });
    const res = await h.call();
    assert.equal(res.status, 200);
    assert.equal(h.clock.now(), 3_600_000);
  });
});

describe("retried responses", () => {
  test("have their bodies cancelled", async () => {
    const h = harness();
    let cancelled = 0;
    h.upstream.on(B1, () => new Response(new ReadableStream({ pull(c) { c.enqueue(new Uint8Array(8)); }, cancel() { cancelled++; } }), { status: 503 }));
    const res = await h.call();
    assert.equal(res.status, 200);
    assert.equal(cancelled, 1);
  });
});

describe("request bodies", () => {
  const bytes = (n: number): Uint8Array<ArrayBuffer> => new Uint8Array(n).map((_, i) => (i * 7 + 3) % 256);

  test("a POST body is replayed identically to every attempt, with method, URL and headers", async () => {
    const h = harness();
    h.upstream.on(B1, "reset").on(B2, 503);
    const body = bytes(4096);
    const res = await h.call("http://payments/charge?x=1", { method: "POST", body, headers: { "content-type": "application/octet-stream", "x-trace": "t1" } });
    assert.equal(res.status, 200);
    assert.equal(h.upstream.calls.length, 3);
    for (const c of h.upstream.calls) {
      assert.equal(c.method, "POST");
      assert.equal(c.url, "http://payments/charge?x=1");
      assert.equal(c.headers.get("x-trace"), "t1");
      assert.deepEqual(c.body, body);
    }
  });

  test("a streamed body of unknown length that fits the buffer is replayed", async () => {
    const h = harness({ policies: [policy({ retryBufferBytes: 100 })] });
    h.upstream.on(B1, 503);
    const chunks = [bytes(40), bytes(60)];
    const stream = new ReadableStream<Uint8Array>({ pull(c) { const n = chunks.shift(); if (n) c.enqueue(n); else c.close(); } });
    const res = await h.call(new Request("http://payments/up", { method: "PUT", body: stream, duplex: "half" } as RequestInit));
    assert.equal(res.status, 200);
    assert.deepEqual(h.upstream.calls.map((c) => c.body.byteLength), [100, 100]);
    assert.equal(h.eventsOf("retry-abandoned").length, 0);
  });

  test("a body with Content-Length over retry_buffer_bytes streams once, unretried, byte-identical", async () => {
    const limit = 1024;
    const h = harness({ policies: [policy({ retryBufferBytes: limit })] });
    h.upstream.always(B1, 503);
    const body = bytes(limit + 1);
    const res = await h.call("http://payments/upload", { method: "POST", body });
    assert.equal(res.status, 503, "the upstream's answer, not retried");
    assert.equal(h.upstream.calls.length, 1);
    assert.deepEqual(h.upstream.calls[0]?.body, body);
    const [abandoned] = h.eventsOf("retry-abandoned");
    assert.match(abandoned?.reason ?? "", /retry_buffer_bytes \(1024\)/);
  });

  test("a body of unknown length that outgrows the limit while read is stitched back, not truncated", async () => {
    const limit = 1024;
    const h = harness({ policies: [policy({ retryBufferBytes: limit })] });
    h.upstream.always(B1, "reset");
    const body = bytes(limit + 1);
    // Uneven chunks so the limit is crossed in the middle of one.
    const parts = [body.slice(0, 1000), body.slice(1000, 1020), body.slice(1020)];
    const stream = new ReadableStream<Uint8Array>({ pull(c) { const n = parts.shift(); if (n) c.enqueue(n); else c.close(); } });
    const res = await h.call(new Request("http://payments/upload", { method: "POST", body: stream, duplex: "half" } as RequestInit));
    assert.equal(res.status, 503);
    assert.equal(h.upstream.calls.length, 1, "not retried");
    assert.deepEqual(h.upstream.calls[0]?.body, body);
    assert.equal(h.eventsOf("retry-abandoned").length, 1);
  });

  test("a body exactly at the limit is still buffered and retried", async () => {
    const h = harness({ policies: [policy({ retryBufferBytes: 1024 })] });
    h.upstream.on(B1, 503);
    const body = bytes(1024);
    assert.equal((await h.call("http://payments/x", { method: "POST", body, headers: { "content-length": "1024" } })).status, 200);
    assert.deepEqual(h.upstream.calls.map((c) => c.body), [body, body]);
  });
});
