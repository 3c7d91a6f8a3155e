import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { encodeTraces, unixNano } from "../../src/core/trace/otlp-json.ts";
import type { Span } from "../../src/core/trace/span.ts";

const span: Span = {
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  spanId: "2222222222222222",
  parentSpanId: "00f067aa0ba902b7",
  name: "POST /charge",
  kind: "CLIENT",
  startMs: 1_700_000_000_123.5,
  endMs: 1_700_000_000_150,
  attributes: { "http.request.method": "POST", "http.response.status_code": 503, "remora.tls.handshake_ms": 2.5, "remora.connection.reused": false },
  events: [{ name: "remora.retry", timeMs: 1_700_000_000_140, attributes: { "remora.attempt": 2 } }],
  status: { code: "ERROR", message: "HTTP 503" },
};

describe("OTLP/HTTP JSON encoding", () => {
  test("resourceSpans -> scopeSpans -> spans, with the resource and scope", () => {
    const body = encodeTraces([span], { "service.name": "orders" });
    assert.equal(body.resourceSpans.length, 1);
    assert.deepEqual(body.resourceSpans[0]?.resource, { attributes: [{ key: "service.name", value: { stringValue: "orders" } }] });
    assert.deepEqual(body.resourceSpans[0]?.scopeSpans[0]?.scope, { name: "remora" });
    assert.equal(body.resourceSpans[0]?.scopeSpans[0]?.spans.length, 1);
  });

  test("ids stay hex, enums are integers, nanos are decimal strings, attributes typed", () => {
    const [s] = encodeTraces([span], {}).resourceSpans[0]!.scopeSpans[0]!.spans;
    // Round-trip through JSON: what the collector parses.
    assert.deepEqual(JSON.parse(JSON.stringify(s)), {
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "2222222222222222",
      parentSpanId: "00f067aa0ba902b7",
      name: "POST /charge",
      kind: 3,
      startTimeUnixNano: "1700000000123500000",
      endTimeUnixNano: "1700000000150000000",
      attributes: [
        { key: "http.request.method", value: { stringValue: "POST" } },
        { key: "http.response.status_code", value: { intValue: "503" } },
        { key: "remora.tls.handshake_ms", value: { doubleValue: 2.5 } },
        { key: "remora.connection.reused", value: { boolValue: false } },
      ],
      events: [{ timeUnixNano: "1700000000140000000", name: "remora.retry", attributes: [{ key: "remora.attempt", value: { intValue: "2" } }] }],
      status: { code: 2, message: "HTTP 503" },
    });
  });

  test("SERVER is 2, INTERNAL 1; a root span has no parentSpanId; UNSET status is 0; no events, no field", () => {
    const root: Span = { ...span, kind: "SERVER", events: [], status: { code: "UNSET" } };
    delete root.parentSpanId;
    const [s] = encodeTraces([root, { ...root, kind: "INTERNAL" }], {}).resourceSpans[0]!.scopeSpans[0]!.spans;
    assert.equal(s?.kind, 2);
    assert.equal("parentSpanId" in s!, false);
    assert.equal("events" in s!, false);
    assert.deepEqual(s?.status, { code: 0 });
    assert.equal(encodeTraces([{ ...root, kind: "INTERNAL" }], {}).resourceSpans[0]!.scopeSpans[0]!.spans[0]?.kind, 1);
  });

  test("an end before the start (clock stepped back) is clamped to the start", () => {
    const [s] = encodeTraces([{ ...span, endMs: span.startMs - 5 }], {}).resourceSpans[0]!.scopeSpans[0]!.spans;
    assert.equal(s?.endTimeUnixNano, s?.startTimeUnixNano);
  });

  test("unixNano is exact past 2^53 nanoseconds", () => {
    assert.equal(unixNano(1_700_000_000_000), "1700000000000000000");
    assert.equal(unixNano(1_700_000_000_001.25), "1700000000001250000");
    assert.equal(unixNano(1_751_234_567_890.123), "1751234567890123047", "the fraction as the double holds it, to the nanosecond");
    assert.equal(unixNano(0.5), "500000");
    assert.equal(unixNano(0), "0");
  });
});
