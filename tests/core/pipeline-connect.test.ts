// Connection-level balancing for tunnels and opaque TCP (Outbound.connect,
// src/core/pipeline/connect.ts): the request path's table, balancer, outlier state and
// retry_on, applied per connection, with an in-memory opener and a fake clock.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Endpoint } from "../../src/core/endpoint.ts";
import { isRemoraError, RemoraError } from "../../src/core/errors.ts";
import { UpstreamError, type UpstreamErrorKind } from "../../src/core/upstream.ts";
import type { Opener } from "../../src/core/pipeline/connect.ts";
import { B1, B2, B3, endpoints, harness, policy } from "./fake-upstream.ts";

/** An opener whose endpoints fail with the scripted kinds, otherwise answer "conn to ADDRESS". */
function opener(failing: Record<string, UpstreamErrorKind> = {}): { open: Opener<string>; tried: string[] } {
  const tried: string[] = [];
  return {
    tried,
    open: async (ep: Endpoint, a) => {
      tried.push(ep.address);
      const kind = failing[ep.address];
      if (kind) throw new UpstreamError(kind, ep.address, `fake ${kind} at ${ep.address}`);
      a.onConnection({ reused: false, handshakeMs: 1, ...(ep.identity ? { peerIdentity: ep.identity } : {}) });
      return `conn to ${ep.address}`;
    },
  };
}

describe("Outbound.connect", () => {
  test("balances connections round robin over the destination's endpoints, by any name form", async () => {
    const h = harness();
    const o = opener();
    const a = await h.outbound.connect("payments", o.open);
    const b = await h.outbound.connect("payments.default.svc.cluster.local", o.open);
    assert.deepEqual([a.value, b.value], [`conn to ${B1}`, `conn to ${B2}`]);
    assert.equal(a.destination, "payments");
    assert.equal(a.attempts, 1);
    assert.equal(a.endpoint.identity, "spiffe://cluster.local/ns/default/sa/payments-1");
    assert.deepEqual(h.eventsOf("connection").map((e) => e.info.peerIdentity), ["spiffe://cluster.local/ns/default/sa/payments-1", "spiffe://cluster.local/ns/default/sa/payments-2"]);
  });

  test("a connect failure is retried at once on an endpoint not tried yet", async () => {
    const h = harness({ endpoints: { payments: endpoints(B1, B2, B3) } });
    const o = opener({ [B1]: "connect-failure" });
    const c = await h.outbound.connect("payments", o.open);
    assert.equal(c.value, `conn to ${B2}`);
    assert.equal(c.attempts, 2);
    assert.deepEqual(o.tried, [B1, B2]);
    assert.deepEqual(h.events.map((e) => e.type), ["resolve", "pick", "attempt-failed", "retry", "pick", "connection"]);
    assert.equal(h.eventsOf("retry")[0]?.backoffMs, 0);
  });

  test("num_retries bounds the attempts; the last failure is what the caller sees", async () => {
    const h = harness({ policies: [policy({ numRetries: 1 })], endpoints: { payments: endpoints(B1, B2, B3) } });
    const o = opener({ [B1]: "connect-failure", [B2]: "tls", [B3]: "connect-failure" });
    const err = await h.outbound.connect("payments", o.open).then(() => assert.fail("connected"), (e: unknown) => e);
    assert.ok(err instanceof UpstreamError);
    assert.equal(err.kind, "tls");
    assert.deepEqual(o.tried, [B1, B2]);
  });

  test("retry_on without connect-failure does not retry a refused connect", async () => {
    const h = harness({ policies: [policy({ retryOn: "retriable-4xx" })] });
    const o = opener({ [B1]: "connect-failure" });
    await assert.rejects(h.outbound.connect("payments", o.open), (e: unknown) => e instanceof UpstreamError && e.kind === "connect-failure");
    assert.deepEqual(o.tried, [B1]);
  });

  test("an error that is not an UpstreamError (a peer's 403) is final and says nothing about the endpoint", async () => {
    const h = harness({ policies: [policy({ outlier: { consecutiveGatewayFailure: 1, consecutive5xx: 0, maxEjectionPercent: 100 } })] });
    const refused = async () => {
      throw new RemoraError("ERR_TUNNEL_REFUSED", "peer refused the tunnel with 403");
    };
    await assert.rejects(h.outbound.connect("payments", refused), (e: unknown) => isRemoraError(e, "ERR_TUNNEL_REFUSED"));
    assert.equal(h.eventsOf("eject").length, 0);
    assert.equal(h.eventsOf("retry").length, 0);
  });

  test("connect failures feed outlier detection: the failing endpoint is ejected and later connections skip it", async () => {
    const h = harness({ policies: [policy({ numRetries: 1, outlier: { consecutive5xx: 2, maxEjectionPercent: 50 } })] });
    const o = opener({ [B1]: "connect-failure" });
    for (let i = 0; i < 2; i++) assert.equal((await h.outbound.connect("payments", o.open)).value, `conn to ${B2}`);
    assert.deepEqual(h.eventsOf("eject").map((e) => e.endpoint), [B1]);
    o.tried.length = 0;
    for (let i = 0; i < 3; i++) await h.outbound.connect("payments", o.open);
    assert.deepEqual(o.tried, [B2, B2, B2]);
  });

  test("a live connection counts as an active request on its endpoint until released (least_request)", async () => {
    const h = harness({ policies: [policy({ loadBalancer: "least_request" })] });
    const o = opener();
    const a = await h.outbound.connect("payments", o.open);
    const active = () => h.outbound.destinations()[0]!.endpoints.map((e) => e.activeRequests);
    assert.equal(active().reduce((x, y) => x + y), 1);
    const b = await h.outbound.connect("payments", o.open);
    assert.notEqual(b.endpoint.address, a.endpoint.address, "the second connection goes to the idle endpoint");
    a.release();
    a.release();
    b.release();
    assert.deepEqual(active(), [0, 0]);
  });

  test("an unknown name, or one without endpoints, is ERR_NO_ROUTE naming it", async () => {
    const h = harness({ endpoints: { payments: endpoints(B1), empty: [] } });
    const o = opener();
    await assert.rejects(h.outbound.connect("paymnts", o.open), (e: unknown) => isRemoraError(e, "ERR_NO_ROUTE") && /"paymnts"/.test(e.message));
    await assert.rejects(h.outbound.connect("empty", o.open), (e: unknown) => isRemoraError(e, "ERR_NO_ROUTE") && /no endpoints for destination "empty"/.test(e.message));
    assert.deepEqual(o.tried, []);
  });
});
