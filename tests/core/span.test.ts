import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { inboundSpan, outboundSpans, type AttemptObservation, type HopRecord } from "../../src/core/trace/span.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const HOP = "00f067aa0ba902b7";
const A1 = "1111111111111111";
const A2 = "2222222222222222";
const B1 = "192.0.2.1:15006";
const B2 = "192.0.2.2:15006";
const PAYMENTS = "spiffe://cluster.local/ns/default/sa/payments";
const ORDERS = "spiffe://cluster.local/ns/default/sa/orders";

const outbound: HopRecord = {
  direction: "outbound",
  requestId: "req-1",
  method: "POST",
  authority: "payments",
  path: "/charge",
  status: 200,
  durationMs: 30,
  upstream: B2,
  attempts: 2,
  peer: PAYMENTS,
  mtls: true,
  traceId: TRACE,
  spanId: HOP,
};

const attempts: AttemptObservation[] = [
  { traceId: TRACE, spanId: A1, parentSpanId: HOP, attempt: 1, endpoint: B1, startMs: 1_000_001, endMs: 1_000_005, status: 503, peerIdentity: PAYMENTS, reused: false, handshakeMs: 2.5 },
  { traceId: TRACE, spanId: A2, parentSpanId: HOP, attempt: 2, endpoint: B2, startMs: 1_000_010, endMs: 1_000_029, status: 200, peerIdentity: PAYMENTS, reused: true },
];

describe("outboundSpans: the caller's hop and one span per attempt", () => {
  const [hop, first, second, ...rest] = outboundSpans(outbound, 1_000_030, attempts, [
    { type: "retry", requestId: "req-1", destination: "payments", attempt: 2, reason: "503 (5xx)", backoffMs: 4.2, timeMs: 1_000_006 },
    { type: "pick", requestId: "req-1", destination: "payments", endpoint: B2, attempt: 2, balancer: "round_robin", timeMs: 1_000_007 },
  ]);

  test("the hop span covers the whole request and names the logical destination", () => {
    assert.equal(rest.length, 0);
    assert.equal(hop?.spanId, HOP);
    assert.equal(hop?.parentSpanId, undefined, "no traceparent came in: the hop is the root");
    assert.equal(hop?.kind, "CLIENT");
    assert.equal(hop?.name, "POST payments/charge");
    assert.equal(hop?.startMs, 1_000_000);
    assert.equal(hop?.endMs, 1_000_030);
    assert.equal(hop?.attributes["http.request.method"], "POST");
    assert.equal(hop?.attributes["url.path"], "/charge");
    assert.equal(hop?.attributes["server.address"], "payments");
    assert.equal(hop?.attributes["http.response.status_code"], 200);
    assert.equal(hop?.attributes["remora.attempts"], 2);
    assert.equal(hop?.attributes["remora.peer.spiffe_id"], PAYMENTS);
    assert.deepEqual(hop?.status, { code: "UNSET" });
  });

  test("retries are events on the hop span; other mesh events are not", () => {
    assert.deepEqual(hop?.events, [
      { name: "remora.retry", timeMs: 1_000_006, attributes: { "remora.attempt": 2, "remora.retry.reason": "503 (5xx)", "remora.retry.backoff_ms": 4.2 } },
    ]);
  });

  test("each attempt is a CLIENT child of the hop, with its endpoint, number and outcome", () => {
    assert.equal(first?.parentSpanId, HOP);
    assert.equal(first?.spanId, A1);
    assert.equal(first?.kind, "CLIENT");
    assert.equal(first?.attributes["server.address"], "192.0.2.1");
    assert.equal(first?.attributes["server.port"], 15006);
    assert.equal(first?.attributes["remora.attempt"], 1);
    assert.equal(first?.attributes["http.request.resend_count"], 0);
    assert.equal(first?.attributes["http.response.status_code"], 503);
    assert.equal(first?.attributes["remora.tls.handshake_ms"], 2.5);
    assert.deepEqual(first?.status, { code: "ERROR", message: "HTTP 503" });
    assert.equal(second?.attributes["remora.attempt"], 2);
    assert.equal(second?.attributes["http.request.resend_count"], 1);
    assert.equal(second?.attributes["remora.connection.reused"], true);
    assert.equal(second?.attributes["remora.peer.spiffe_id"], PAYMENTS);
    assert.deepEqual([second?.startMs, second?.endMs], [1_000_010, 1_000_029]);
    assert.deepEqual(second?.status, { code: "UNSET" });
  });

  test("an attempt that broke without a response carries error.type and the message", () => {
    const [, broken] = outboundSpans({ ...outbound, status: 503, attempts: 1 }, 5, [
      { traceId: TRACE, spanId: A1, parentSpanId: HOP, attempt: 1, endpoint: B1, startMs: 1, endMs: 4, error: { kind: "reset", message: "connection reset by 192.0.2.1:15006" } },
    ]);
    assert.equal(broken?.attributes["error.type"], "reset");
    assert.equal(broken?.attributes["http.response.status_code"], undefined);
    assert.deepEqual(broken?.status, { code: "ERROR", message: "connection reset by 192.0.2.1:15006" });
  });

  test("a hop with a caller's traceparent is that span's child; a request with no answer is an error", () => {
    const [child] = outboundSpans({ ...outbound, parentSpanId: A1, status: undefined }, 100, []);
    assert.equal(child?.parentSpanId, A1);
    assert.equal(child?.attributes["http.response.status_code"], undefined);
    assert.deepEqual(child?.status, { code: "ERROR", message: "no response" });
  });
});

describe("inboundSpan: the callee's SERVER span", () => {
  const record: HopRecord = {
    direction: "inbound",
    requestId: "req-1",
    method: "POST",
    authority: "payments",
    path: "/charge",
    status: 200,
    durationMs: 12,
    upstream: "127.0.0.1:8080",
    peer: ORDERS,
    mtls: true,
    traceId: TRACE,
    spanId: "3333333333333333",
    parentSpanId: A2,
  };

  test("it hangs under the attempt that reached it and names the verified caller", () => {
    const s = inboundSpan(record, 2_000);
    assert.equal(s.kind, "SERVER");
    assert.equal(s.parentSpanId, A2);
    assert.deepEqual([s.startMs, s.endMs], [1_988, 2_000]);
    assert.equal(s.attributes["remora.peer.spiffe_id"], ORDERS);
    assert.equal(s.attributes["remora.mtls"], true);
    assert.equal(s.attributes["remora.upstream"], "127.0.0.1:8080");
    assert.deepEqual(s.status, { code: "UNSET" });
  });

  test("a SERVER span is an error from 500 up only (a 4xx is the caller's)", () => {
    assert.deepEqual(inboundSpan({ ...record, status: 403 }, 1).status, { code: "UNSET" });
    assert.deepEqual(inboundSpan({ ...record, status: 503 }, 1).status, { code: "ERROR", message: "HTTP 503" });
  });
});
