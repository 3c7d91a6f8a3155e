// Spans in the OTLP/HTTP JSON encoding (opentelemetry-proto, ExportTraceServiceRequest):
// resourceSpans -> scopeSpans -> spans. The JSON mapping's rules from the OTLP spec:
// trace and span ids are hex strings (not base64), enums are integers, 64-bit integers
// (the unix-nano timestamps) are decimal strings, field names are lowerCamelCase.

import type { AttributeValue, Attributes, Span, SpanKind } from "./span.ts";

export interface OtlpKeyValue {
  key: string;
  value: { stringValue: string } | { boolValue: boolean } | { intValue: string } | { doubleValue: number };
}

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: OtlpKeyValue[];
  events?: { timeUnixNano: string; name: string; attributes: OtlpKeyValue[] }[];
  status: { code: number; message?: string };
}

export interface OtlpTracesRequest {
  resourceSpans: {
    resource: { attributes: OtlpKeyValue[] };
    scopeSpans: { scope: { name: string; version?: string }; spans: OtlpSpan[] }[];
  }[];
}

/** opentelemetry.proto.trace.v1.Span.SpanKind */
const KIND: Record<SpanKind, number> = { INTERNAL: 1, SERVER: 2, CLIENT: 3 };
/** opentelemetry.proto.trace.v1.Status.StatusCode */
const STATUS: Record<Span["status"]["code"], number> = { UNSET: 0, OK: 1, ERROR: 2 };

export const SCOPE = { name: "remora" } as const;

/** One export request: all spans of one resource (one sidecar) under remora's scope. */
export function encodeTraces(spans: readonly Span[], resource: Attributes, scope: { name: string; version?: string } = SCOPE): OtlpTracesRequest {
  return {
    resourceSpans: [
      {
        resource: { attributes: keyValues(resource) },
        scopeSpans: [{ scope, spans: spans.map(encodeSpan) }],
      },
    ],
  };
}

export function encodeSpan(s: Span): OtlpSpan {
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
    name: s.name,
    kind: KIND[s.kind],
    startTimeUnixNano: unixNano(s.startMs),
    endTimeUnixNano: unixNano(Math.max(s.startMs, s.endMs)),
    attributes: keyValues(s.attributes),
    ...(s.events.length === 0 ? {} : { events: s.events.map((e) => ({ timeUnixNano: unixNano(e.timeMs), name: e.name, attributes: keyValues(e.attributes ?? {}) })) }),
    status: { code: STATUS[s.status.code], ...(s.status.message ? { message: s.status.message } : {}) },
  };
}

export function keyValues(attributes: Attributes): OtlpKeyValue[] {
  return Object.entries(attributes).map(([key, value]) => ({ key, value: anyValue(value) }));
}

function anyValue(v: AttributeValue): OtlpKeyValue["value"] {
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
}

/**
 * Unix ms (possibly fractional) as an exact decimal count of nanoseconds. Multiplying the
 * float by 1e6 would round above 2^53 (today's times are ~1.7e18 ns), so whole
 * milliseconds and the sub-millisecond rest are scaled separately.
 */
export function unixNano(ms: number): string {
  const whole = Math.floor(ms);
  const rest = Math.min(999_999, Math.round((ms - whole) * 1e6));
  return (BigInt(whole) * 1_000_000n + BigInt(rest)).toString();
}
