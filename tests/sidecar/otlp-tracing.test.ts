// Tracing wired the way the sidecar wires it (wrapSend around the Upstream, observe() fed
// by the event hub), driven through the real outbound pipeline with a fake upstream.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { B1, B2, endpoints, FakeUpstream, policy, sequence } from "../core/fake-upstream.ts";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { createOutbound } from "../../src/core/pipeline.ts";
import { nextHop, parseTraceparent } from "../../src/core/trace/traceparent.ts";
import type { Span } from "../../src/core/trace/span.ts";
import { createEventHub, type RequestRecord } from "../../src/sidecar/event-stream.ts";
import { createTracing, tracedHub } from "../../src/sidecar/tracing/tracing.ts";
import type { SpanExporter } from "../../src/sidecar/tracing/otlp-exporter.ts";

function memoryExporter(): SpanExporter & { spans: Span[] } {
  const spans: Span[] = [];
  return { url: "memory:", spans, export: (s) => void spans.push(...s), flush: async () => {}, close: async () => {}, exported: 0, dropped: 0 };
}

function counterBytes(): (n: number) => Uint8Array {
  let next = 0x10;
  return (n) => Uint8Array.from({ length: n }, () => next++ & 0xff);
}

const silent = { info() {}, warn() {}, error() {} };

/** One outbound request as the sidecar's outbound handler makes it: hop, pipeline, record. */
async function setup() {
  const clock = new FakeClock(1_000_000);
  const upstream = new FakeUpstream(clock);
  const exporter = memoryExporter();
  const tracing = createTracing({ otlpEndpoint: "http://192.0.2.9:4318" }, { clock, log: silent, service: "orders", exporter, randomBytes: counterBytes() });
  const hub = tracedHub(createEventHub({ service: "orders", now: () => clock.now() }), tracing);
  const outbound = createOutbound(
    { policies: [policy({ backoff: { baseMs: 10, maxMs: 10 } })], endpoints: { payments: endpoints(B1, B2) } },
    { send: tracing.wrapSend(upstream.send), clock, random: sequence(0.5), onEvent: (e) => hub.publish(e), defaultPolicy: () => policy() },
  );
  const call = async (headers: Record<string, string> = {}) => {
    const start = clock.now();
    const hop = nextHop(new Headers(headers));
    const req = new Request("http://payments/charge", { method: "POST", body: '{"amount":42}', headers: { ...headers, "x-request-id": "req-1", traceparent: hop.traceparent } });
    const res = await clock.run(outbound.handle(req));
    const record: RequestRecord = {
      type: "request",
      direction: "outbound",
      requestId: "req-1",
      method: "POST",
      authority: "payments",
      path: "/charge",
      status: res.status,
      durationMs: clock.now() - start,
      attempts: upstream.calls.length,
      traceId: hop.traceId,
      spanId: hop.spanId,
      ...(hop.parentSpanId ? { parentSpanId: hop.parentSpanId } : {}),
    };
    hub.publish(record);
    return { res, hop };
  };
  return { clock, upstream, exporter, tracing, hub, call };
}

describe("tracing in the sidecar", () => {
  test("B1 resets, B2 answers: the hop span, one span per attempt, and B2 sees attempt 2 as its parent", async () => {
    const t = await setup();
    t.upstream.on(B1, { delayMs: 3, then: "reset" });
    t.upstream.on(B2, { delayMs: 7, then: 200 });
    const { res, hop } = await t.call();
    assert.equal(res.status, 200);

    const [root, first, second, ...rest] = t.exporter.spans;
    assert.equal(rest.length, 0);
    assert.equal(root?.spanId, hop.spanId);
    assert.equal(root?.attributes["remora.attempts"], 2);
    assert.deepEqual(root?.events.map((e) => e.name), ["remora.retry"]);
    assert.deepEqual([first?.parentSpanId, second?.parentSpanId], [hop.spanId, hop.spanId]);
    assert.deepEqual([first?.attributes["server.address"], second?.attributes["server.address"]], ["192.0.2.1", "192.0.2.2"]);
    assert.equal(first?.attributes["error.type"], "reset");
    assert.equal(first?.endMs - first!.startMs, 3);
    assert.equal(second?.attributes["http.response.status_code"], 200);
    assert.equal(second?.attributes["remora.peer.spiffe_id"], "spiffe://cluster.local/ns/default/sa/payments-2");
    assert.equal(second?.endMs - second!.startMs, 7);
    assert.ok(second!.startMs >= first!.endMs, "the retry starts after the first attempt ended");

    // What went on the wire: each attempt names itself as the parent (W3C traceparent).
    const sent = t.upstream.calls.map((c) => parseTraceparent(c.headers.get("traceparent")));
    assert.deepEqual(sent.map((tp) => tp?.parentId), [first?.spanId, second?.spanId]);
    assert.deepEqual(sent.map((tp) => tp?.traceId), [hop.traceId, hop.traceId]);
    assert.equal(new TextDecoder().decode(t.upstream.calls[1]!.body), '{"amount":42}', "the body is replayed intact");

    // The callee's sidecar takes that traceparent: its span hangs under attempt 2.
    const calleeHop = nextHop(t.upstream.calls[1]!.headers);
    assert.equal(calleeHop.parentSpanId, second?.spanId);
  });

  test("an incoming traceparent is kept: same trace, the app's span is the hop's parent", async () => {
    const t = await setup();
    const appSpan = "a1a2a3a4a5a6a7a8";
    const { hop } = await t.call({ traceparent: `00-4bf92f3577b34da6a3ce929d0e0e4736-${appSpan}-01` });
    const [root, attempt] = t.exporter.spans;
    assert.equal(hop.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert.equal(root?.traceId, hop.traceId);
    assert.equal(root?.parentSpanId, appSpan);
    assert.equal(attempt?.traceId, hop.traceId);
  });

  test("an inbound record becomes one SERVER span; the hub still feeds its readers", async () => {
    const t = await setup();
    const stream = t.hub.subscribe({ types: new Set(["request"]) });
    const inbound: RequestRecord = {
      type: "request",
      direction: "inbound",
      requestId: "req-9",
      method: "POST",
      authority: "payments",
      path: "/charge",
      status: 200,
      durationMs: 4,
      upstream: "127.0.0.1:8080",
      peer: "spiffe://cluster.local/ns/default/sa/orders",
      mtls: true,
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "b1b2b3b4b5b6b7b8",
      parentSpanId: "c1c2c3c4c5c6c7c8",
    };
    t.hub.publish(inbound);
    assert.equal(t.exporter.spans.length, 1);
    assert.equal(t.exporter.spans[0]?.kind, "SERVER");
    assert.equal(t.exporter.spans[0]?.parentSpanId, "c1c2c3c4c5c6c7c8");
    assert.equal(t.hub.subscribers, 1);
    const reader = stream.getReader();
    const lines = new TextDecoder().decode((await reader.read()).value) + new TextDecoder().decode((await reader.read()).value);
    assert.match(lines, /"type":"hello"/);
    assert.match(lines, /"requestId":"req-9"/);
    await reader.cancel();
  });

  test("a request with no traceparent or x-request-id goes through untouched and unrecorded", async () => {
    const t = await setup();
    const send = t.tracing.wrapSend(t.upstream.send);
    const res = await t.clock.run(send(new Request("http://payments/charge"), { address: B1 }, { signal: new AbortController().signal, tls: "MUTUAL" }));
    assert.equal(res.status, 200);
    assert.equal(t.upstream.calls[0]?.headers.get("traceparent"), null);
    assert.equal(t.exporter.spans.length, 0);
  });
});
