// Spans per hop, built from what a sidecar observed: the finished request record, the
// physical attempts it made and the MeshEvents between them. Pure: no clock, no I/O.
// Names and attributes follow OpenTelemetry's HTTP semantic conventions where one exists.

import type { MeshEvent } from "../events.ts";
import type { UpstreamErrorKind } from "../upstream.ts";

export type SpanKind = "INTERNAL" | "SERVER" | "CLIENT";
export type AttributeValue = string | number | boolean;
export type Attributes = Record<string, AttributeValue>;

export interface SpanEvent {
  name: string;
  timeMs: number;
  attributes?: Attributes;
}

export interface Span {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits. */
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: SpanKind;
  /** Unix ms; may carry a fraction. */
  startMs: number;
  endMs: number;
  attributes: Attributes;
  events: SpanEvent[];
  status: { code: "UNSET" | "OK" | "ERROR"; message?: string };
}

/** One finished request as one side saw it (outbound: app -> mesh; inbound: mesh -> app); the sidecar's RequestRecord is this plus its type tag. */
export interface HopRecord {
  direction: "outbound" | "inbound";
  requestId: string;
  method: string;
  authority: string;
  path: string;
  status: number | undefined;
  durationMs: number;
  /** Outbound: the endpoint that answered. Inbound: the local app. */
  upstream?: string;
  attempts?: number;
  /** Outbound: the callee's verified SPIFFE ID. Inbound: the caller's (absent on plaintext). */
  peer?: string;
  mtls?: boolean;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
}

/** One physical request to one endpoint, as the sending side saw it. */
export interface AttemptObservation {
  traceId: string;
  /** This attempt's own span id: the parent-id the callee received in `traceparent`. */
  spanId: string;
  /** The hop's span id. */
  parentSpanId: string;
  /** 1 for the first try. */
  attempt: number;
  endpoint: string;
  startMs: number;
  endMs: number;
  status?: number;
  error?: { kind: UpstreamErrorKind | "aborted"; message: string };
  /** The SPIFFE ID the peer presented and that was verified. */
  peerIdentity?: string;
  reused?: boolean;
  handshakeMs?: number;
}

/** A MeshEvent with the time the sidecar saw it. */
export type TimedEvent = MeshEvent & { timeMs: number };

/**
 * The caller side of one hop: the sidecar's outbound span (Envoy's egress span, kind
 * CLIENT: it stands for the app's call) and one CLIENT span per physical attempt, as
 * OpenTelemetry asks of retries ("each resend is its own span", http.request.resend_count).
 * Retries and their reasons become events on the outbound span.
 */
export function outboundSpans(record: HopRecord, endMs: number, attempts: readonly AttemptObservation[], events: readonly TimedEvent[] = []): Span[] {
  const hop: Span = {
    traceId: record.traceId,
    spanId: record.spanId,
    ...(record.parentSpanId ? { parentSpanId: record.parentSpanId } : {}),
    name: `${record.method} ${record.authority}${record.path}`,
    kind: "CLIENT",
    startMs: endMs - record.durationMs,
    endMs,
    attributes: {
      ...httpAttributes(record.method, record.path, hostOf(record.authority)),
      "url.full": `http://${record.authority}${record.path}`,
      ...(record.status === undefined ? {} : { "http.response.status_code": record.status }),
      "remora.direction": "outbound",
      "remora.request_id": record.requestId,
      "remora.attempts": record.attempts ?? attempts.length,
      ...(record.upstream ? { "remora.upstream": record.upstream } : {}),
      ...(record.peer ? { "remora.peer.spiffe_id": record.peer } : {}),
    },
    events: events.flatMap(spanEventOf),
    status: statusOf(record.status, "CLIENT"),
  };
  return [hop, ...attempts.map((a) => attemptSpan(record, a))];
}

/** The callee side of one hop: the inbound sidecar's SERVER span, child of the caller's attempt. */
export function inboundSpan(record: HopRecord, endMs: number): Span {
  return {
    traceId: record.traceId,
    spanId: record.spanId,
    ...(record.parentSpanId ? { parentSpanId: record.parentSpanId } : {}),
    name: `${record.method} ${record.path}`,
    kind: "SERVER",
    startMs: endMs - record.durationMs,
    endMs,
    attributes: {
      ...httpAttributes(record.method, record.path, hostOf(record.authority)),
      ...(record.status === undefined ? {} : { "http.response.status_code": record.status }),
      "remora.direction": "inbound",
      "remora.request_id": record.requestId,
      "remora.mtls": record.mtls === true,
      ...(record.upstream ? { "remora.upstream": record.upstream } : {}),
      ...(record.peer ? { "remora.peer.spiffe_id": record.peer } : {}),
    },
    events: [],
    status: statusOf(record.status, "SERVER"),
  };
}

function attemptSpan(record: HopRecord, a: AttemptObservation): Span {
  const [address, port] = splitHostPort(a.endpoint);
  return {
    traceId: a.traceId,
    spanId: a.spanId,
    parentSpanId: a.parentSpanId,
    name: `${record.method} ${record.path}`,
    kind: "CLIENT",
    startMs: a.startMs,
    endMs: a.endMs,
    attributes: {
      ...httpAttributes(record.method, record.path, address),
      ...(port === undefined ? {} : { "server.port": port }),
      "remora.attempt": a.attempt,
      "http.request.resend_count": a.attempt - 1,
      ...(a.status === undefined ? {} : { "http.response.status_code": a.status }),
      ...(a.error ? { "error.type": a.error.kind } : {}),
      ...(a.peerIdentity ? { "remora.peer.spiffe_id": a.peerIdentity } : {}),
      ...(a.reused === undefined ? {} : { "remora.connection.reused": a.reused }),
      ...(a.handshakeMs === undefined ? {} : { "remora.tls.handshake_ms": round(a.handshakeMs) }),
    },
    events: [],
    status: a.error ? { code: "ERROR", message: a.error.message } : statusOf(a.status, "CLIENT"),
  };
}

function httpAttributes(method: string, path: string, address: string): Attributes {
  return { "http.request.method": method, "url.path": path, "server.address": address };
}

function spanEventOf(e: TimedEvent): SpanEvent[] {
  switch (e.type) {
    case "retry":
      return [{ name: "remora.retry", timeMs: e.timeMs, attributes: { "remora.attempt": e.attempt, "remora.retry.reason": e.reason, "remora.retry.backoff_ms": round(e.backoffMs) } }];
    case "retry-abandoned":
      return [{ name: "remora.retry_abandoned", timeMs: e.timeMs, attributes: { "remora.retry.reason": e.reason } }];
    default:
      return [];
  }
}

/**
 * OpenTelemetry HTTP span status: a CLIENT span is an error from 400 up, a SERVER span only
 * from 500 up (a 4xx is the caller's fault, not the server's). Otherwise left UNSET.
 */
function statusOf(status: number | undefined, kind: "CLIENT" | "SERVER"): Span["status"] {
  if (status === undefined) return { code: "ERROR", message: "no response" };
  if (status >= (kind === "CLIENT" ? 400 : 500)) return { code: "ERROR", message: `HTTP ${status}` };
  return { code: "UNSET" };
}

function hostOf(authority: string): string {
  return splitHostPort(authority)[0];
}

function splitHostPort(a: string): [string, number | undefined] {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(a);
  if (!m) return [a, undefined];
  return [m[1]!.replace(/^\[|\]$/g, ""), Number(m[2])];
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
