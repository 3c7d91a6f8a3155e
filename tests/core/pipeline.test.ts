import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { B1, B2, B3, endpoints, harness, policy, sequence } from "./fake-upstream.ts";

describe("the reference scenario (DESIGN.md)", () => {
  test("B1 resets, the retry goes to B2 and answers 200; after 5 failures B1 is ejected for 30 s", async () => {
    const h = harness({ policies: [policy({ outlier: { consecutive5xx: 5, baseEjectionMs: 30_000 } })] });
    // "mTLS handshake with sidecar B1 ... RESET": a reset during the handshake is a connect failure.
    h.upstream.always(B1, "connect-failure");

    const res = await h.call("http://payments/charge", { method: "POST", body: '{"amount":42}' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), `200 from ${B2}`);
    assert.deepEqual(
      h.events.map((e) => [e.type, "endpoint" in e ? e.endpoint : undefined]),
      [["resolve", undefined], ["pick", B1], ["attempt-failed", B1], ["retry", undefined], ["pick", B2], ["connection", B2], ["response", B2]],
    );
    const [response] = h.eventsOf("response");
    assert.equal(response?.attempts, 2);
    assert.equal(response?.peerIdentity, "spiffe://cluster.local/ns/default/sa/payments-2");
    assert.equal(h.eventsOf("pick")[0]?.balancer, "round_robin");
    assert.deepEqual(h.eventsOf("attempt-failed").map((e) => e.kind), ["connect-failure"]);
    assert.deepEqual(h.upstream.calls.map((c) => c.tls), ["MUTUAL", "MUTUAL"]);

    // Four more requests: round robin starts each on B1 again, which fails each time.
    for (let i = 0; i < 4; i++) assert.equal((await h.call()).status, 200);
    assert.equal(h.upstream.callsTo(B1).length, 5);
    const [eject] = h.eventsOf("eject");
    assert.deepEqual(eject && { endpoint: eject.endpoint, reason: eject.reason, forMs: eject.untilMs - h.clock.now() }, { endpoint: B1, reason: "consecutive_5xx", forMs: 30_000 });

    // Later calls skip B1 for the whole ejection.
    for (let i = 0; i < 10; i++) {
      h.clock.advance(2_900);
      assert.equal((await h.call()).status, 200);
    }
    assert.equal(h.upstream.callsTo(B1).length, 5, "B1 received nothing while ejected");
    assert.equal(h.eventsOf("retry").length, 5, "no retries once B1 is out of rotation");

    // B1 recovers; at the 30 s sweep it returns to rotation.
    h.upstream.always(B1, 200);
    h.clock.advance(1_000);
    await h.call();
    await h.call();
    assert.equal(h.upstream.callsTo(B1).length, 6);
    assert.deepEqual(h.eventsOf("uneject").map((e) => e.endpoint), [B1]);
  });
});

describe("routing", () => {
  test("an unknown host gets 404 naming it", async () => {
    const h = harness();
    const res = await h.call("http://paymnts/charge");
    assert.equal(res.status, 404);
    assert.equal(await res.text(), 'remora: no route for host "paymnts"\n');
    assert.equal(h.upstream.calls.length, 0);
    assert.deepEqual(h.events.map((e) => e.type), ["response"]);
    assert.equal(h.eventsOf("response")[0]?.status, 404);
  });

  test("Kubernetes-style names and ports reach the same destination", async () => {
    const h = harness();
    for (const url of ["http://payments.default.svc.cluster.local:80/x", "http://payments.default/x", "http://PAYMENTS:8080/x"]) {
      assert.equal((await h.call(url)).status, 200, url);
    }
    assert.equal(h.upstream.calls.length, 3);
    assert.equal(h.upstream.calls[0]?.url, "http://payments.default.svc.cluster.local/x", "the original URL is kept");
  });

  test("a destination with no endpoints answers 503", async () => {
    const h = harness({ endpoints: { payments: [] } });
    const res = await h.call();
    assert.equal(res.status, 503);
    assert.match(await res.text(), /no endpoints/);
  });

  test("a destination without its own policy uses defaultPolicy(name)", async () => {
    const h = harness({ policies: [], endpoints: { ledger: endpoints(B1, B2) } });
    // The harness default retries connect-failure and status 503 only.
    h.upstream.on(B1, 500);
    assert.equal((await h.call("http://ledger/")).status, 500);
    h.upstream.on(B2, 503);
    assert.equal((await h.call("http://ledger/")).status, 200);
    assert.equal(h.outbound.destinations()[0]?.policy.route.destination, "ledger");
  });

  test("the policy's TLS mode is passed to the upstream", async () => {
    const h = harness({ policies: [policy({ tls: "DISABLE" })] });
    await h.call();
    assert.equal(h.upstream.calls[0]?.tls, "DISABLE");
    assert.equal(h.eventsOf("connection").length, 0);
    assert.equal(h.eventsOf("response")[0]?.peerIdentity, undefined);
  });

  test("the request id comes from x-request-id when present", async () => {
    const h = harness();
    await h.call("http://payments/", { headers: { "x-request-id": "abc-123" } });
    await h.call("http://payments/");
    assert.deepEqual([...new Set(h.events.map((e) => ("requestId" in e ? e.requestId : "")))], ["abc-123", "req-1"]);
  });
});

describe("least_request through the pipeline", () => {
  test("sends to the endpoint with fewer requests in flight", async () => {
    const h = harness({ policies: [policy({ loadBalancer: "least_request" })], random: sequence(0) });
    h.upstream.on(B1, { delayMs: 1000, then: 200 });
    const slow = h.outbound.handle(new Request("http://payments/slow"));
    await h.clock.run(Promise.resolve());
    assert.equal(h.outbound.destinations()[0]?.endpoints[0]?.activeRequests, 1);
    for (let i = 0; i < 3; i++) await h.outbound.handle(new Request("http://payments/fast"));
    assert.deepEqual(h.upstream.calls.map((c) => c.address), [B1, B2, B2, B2]);
    assert.equal((await h.clock.run(slow)).status, 200);
    assert.equal(h.outbound.destinations()[0]?.endpoints[0]?.activeRequests, 0);
  });
});

describe("client abort", () => {
  test("the client leaving cancels the attempt and everything after it", async () => {
    const h = harness({ policies: [policy({ perTryTimeoutMs: 100 })] });
    h.upstream.always(B1, "hang").always(B2, "hang");
    const controller = new AbortController();
    const pending = h.outbound.handle(new Request("http://payments/", { signal: controller.signal }));
    await h.clock.run(Promise.resolve());
    assert.equal(h.upstream.calls.length, 1);
    controller.abort(new Error("client went away"));
    await assert.rejects(h.clock.run(pending), /client went away/);
    assert.equal(h.upstream.calls[0]?.signal.aborted, true);
    assert.equal(h.upstream.calls.length, 1, "no retry after the client left");
    assert.equal(h.eventsOf("retry").length, 0);
    assert.equal(h.eventsOf("response")[0]?.status, 499);
    assert.equal(h.clock.pending(), 0, "timers cancelled");
  });

  // Without a per-try timeout the attempt waits on the route signal alone, which must follow the client.
  for (const timeoutMs of [15_000, 0]) {
    test(`with no per-try timeout and route timeout ${timeoutMs} ms, the attempt stops with the client's reason`, async () => {
      const h = harness({ policies: [policy({ timeoutMs })] });
      h.upstream.always(B1, "hang").always(B2, "hang");
      const controller = new AbortController();
      const pending = h.outbound.handle(new Request("http://payments/", { signal: controller.signal }));
      await h.clock.run(Promise.resolve());
      const gone = new Error("client went away");
      controller.abort(gone);
      // Checked before awaiting: an attempt deaf to the client would never settle.
      assert.equal(h.upstream.calls[0]?.signal.reason, gone);
      await assert.rejects(h.clock.run(pending), /client went away/);
      assert.equal(h.upstream.calls.length, 1, "no retry after the client left");
      assert.equal(h.eventsOf("response")[0]?.status, 499);
      assert.equal(h.clock.pending(), 0, "timers cancelled");
    });
  }

  test("after the response head, the client leaving still reaches the attempt's signal (a streaming body stops)", async () => {
    const h = harness({ policies: [policy()] });
    const controller = new AbortController();
    const res = await h.clock.run(h.outbound.handle(new Request("http://payments/", { signal: controller.signal })));
    assert.equal(res.status, 200);
    assert.equal(h.upstream.calls[0]?.signal.aborted, false);
    const gone = new Error("client went away mid-body");
    controller.abort(gone);
    assert.equal(h.upstream.calls[0]?.signal.reason, gone);
  });

  test("the client leaving during a back-off ends the wait at once, with no further attempt", async () => {
    const h = harness({ policies: [policy({ backoff: { baseMs: 10_000, maxMs: 10_000 } })] });
    h.upstream.on(B1, 503);
    const controller = new AbortController();
    const pending = h.outbound.handle(new Request("http://payments/", { signal: controller.signal }));
    await h.clock.run(Promise.resolve());
    assert.equal(h.eventsOf("retry").length, 1, "waiting in the back-off");
    controller.abort(new Error("client went away"));
    await assert.rejects(pending, /client went away/);
    assert.equal(h.upstream.calls.length, 1);
    assert.equal(h.clock.pending(), 0, "timers cancelled");
  });

  test("the route timeout still answers 504 when the client stays", async () => {
    const h = harness({ policies: [policy({ timeoutMs: 500 })] });
    h.upstream.always(B1, "hang").always(B2, "hang");
    const res = await h.clock.run(h.outbound.handle(new Request("http://payments/")));
    assert.equal(res.status, 504);
    assert.equal(h.upstream.calls[0]?.signal.aborted, true);
    assert.equal(h.clock.pending(), 0);
  });
});

describe("update()", () => {
  test("keeps ejection state for endpoints that remain and applies the new policy at once", async () => {
    const h = harness({ policies: [policy({ numRetries: 0, outlier: { consecutive5xx: 1 } })], endpoints: { payments: endpoints(B1, B2) } });
    h.upstream.on(B1, 500);
    await h.call();
    assert.equal(h.outbound.destinations()[0]?.endpoints[0]?.ejected, true);

    h.outbound.update({ policies: [policy({ numRetries: 2, outlier: { consecutive5xx: 1 } })], endpoints: { payments: endpoints(B1, B3) } });
    const [d] = h.outbound.destinations();
    assert.deepEqual(d?.endpoints.map((e) => [e.address, e.ejected, e.ejectionCount]), [[B1, true, 1], [B3, false, 0]]);
    assert.equal(d?.policy.route.retry.numRetries, 2);

    h.upstream.on(B3, 503, 503);
    const before = h.upstream.calls.length;
    const res = await h.call();
    assert.equal(res.status, 200);
    // The retry count went from 0 to 2 in place; B1 stays out while ejected, so B3 is tried three times.
    assert.deepEqual(h.upstream.calls.slice(before).map((c) => c.address), [B3, B3, B3]);

    h.clock.advance(30_000);
    assert.equal(h.outbound.destinations()[0]?.endpoints[0]?.ejected, false, "the kept ejection still ends on time");
  });

  test("keeps round robin position for endpoints that remain", async () => {
    const h = harness({ endpoints: { payments: endpoints(B1, B2, B3) } });
    await h.call();
    h.outbound.update({ policies: [policy()], endpoints: { payments: endpoints(B1, B2, B3) } });
    await h.call();
    await h.call();
    assert.deepEqual(h.upstream.calls.map((c) => c.address), [B1, B2, B3]);
  });

  test("a config that cannot be applied leaves the previous one in place", async () => {
    const h = harness({ policies: [policy()] });
    assert.throws(() =>
      h.outbound.update({
        policies: [],
        endpoints: {
          get payments(): never {
            throw new Error("broken snapshot");
          },
        },
      }),
    );
    assert.equal((await h.call()).status, 200);
    assert.equal(h.outbound.destinations().length, 1);
  });

  test("a request in flight during update finishes on the snapshot it started with", async () => {
    const h = harness({ policies: [policy()] });
    h.upstream.on(B1, { delayMs: 50, then: 503 });
    const pending = h.outbound.handle(new Request("http://payments/"));
    await h.clock.run(Promise.resolve());
    h.outbound.update({ policies: [policy({ numRetries: 0 })], endpoints: { other: endpoints(B3) } });
    const res = await h.clock.run(pending);
    assert.equal(res.status, 200, "retried under the old policy to B2");
    assert.equal((await h.call()).status, 404, "new requests see the new table");
  });
});
