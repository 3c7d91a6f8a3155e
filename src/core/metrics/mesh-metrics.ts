// remora's golden metrics (requests by class, latency, retries, ejections, connections,
// TLS handshakes, certificate expiry), and how each MeshEvent of the outbound path
// moves them. The sidecar's inbound side updates the same families directly.

import type { MeshEvent } from "../events.ts";
import type { LimitEvent } from "../pipeline/circuit-breaker.ts";
import type { UpstreamErrorKind } from "../upstream.ts";
import type { Counter, Gauge, Histogram, Registry } from "./registry.ts";

export interface MeshMetrics {
  /** code_class: "2xx" .. "5xx". */
  requests: Counter<"direction" | "destination" | "code_class">;
  /** Seconds from request to response head, all attempts included. */
  duration: Histogram<"direction" | "destination">;
  retries: Counter<"destination">;
  retriesAbandoned: Counter<"destination">;
  outlierEjections: Counter<"destination" | "endpoint">;
  endpointsEjected: Gauge<"destination">;
  /** result: "new", "reused", "connect_failure", "reset", "timeout", "tls". */
  upstreamCx: Counter<"destination" | "endpoint" | "result">;
  /** result: "success", "failure" (outbound); the inbound side adds its own, e.g. "refused". */
  tlsHandshakes: Counter<"direction" | "result">;
  /** notAfter of the sidecar's current SVID, Unix seconds. */
  certExpiry: Gauge<"identity">;
  inboundDenied: Counter<"reason">;
  /** tls: "mtls" (verified client certificate) or "plaintext" (accepted in PERMISSIVE or DISABLE). */
  inboundTls: Counter<"tls">;
  /** kind: "delay" or "abort"; rule: the route.rules entry that injected it. */
  faultsInjected: Counter<"destination" | "rule" | "kind">;
  /** result: "success" (the copy got a response head) or "failure". */
  mirrored: Counter<"destination" | "mirror" | "result">;
  /** rule: the rule whose bucket was empty, "*" for the destination-wide one. */
  rateLimited: Counter<"destination" | "rule">;
  /** Retries the retry budget refused (not sent), by destination. */
  retriesBudgetExhausted: Counter<"destination">;
  /** breaker: max_connections, max_pending_requests, max_requests or max_requests_per_endpoint. */
  overflow: Counter<"destination" | "breaker">;
  /** Tunnels and opaque TCP (docs/protocols.md); result: "success", "connect_failure", "refused", "no_route", … */
  tcpConnections: Counter<"direction" | "destination" | "result">;
  /** flow: "sent" (from the side that opened the connection) or "received". */
  tcpBytes: Counter<"direction" | "destination" | "flow">;
  tcpActive: Gauge<"direction" | "destination">;
  /** gRPC calls by their final grpc-status (a number as text), from the head or the trailers (grpc-metrics.ts). */
  grpcResponses: Counter<"direction" | "destination" | "grpc_status">;
}

export function createMeshMetrics(registry: Registry): MeshMetrics {
  return {
    requests: registry.counter({
      name: "remora_requests_total",
      help: "Requests handled by the sidecar, by direction, destination and response class.",
      labelNames: ["direction", "destination", "code_class"],
    }),
    duration: registry.histogram({
      name: "remora_request_duration_seconds",
      help: "Time from receiving a request to its response head, retries included.",
      labelNames: ["direction", "destination"],
    }),
    retries: registry.counter({
      name: "remora_retries_total",
      help: "Retries sent, by destination.",
      labelNames: ["destination"],
    }),
    retriesAbandoned: registry.counter({
      name: "remora_retries_abandoned_total",
      help: "Requests that lost retry protection (body larger than the retry buffer), by destination.",
      labelNames: ["destination"],
    }),
    outlierEjections: registry.counter({
      name: "remora_outlier_ejections_total",
      help: "Endpoints ejected by outlier detection.",
      labelNames: ["destination", "endpoint"],
    }),
    endpointsEjected: registry.gauge({
      name: "remora_endpoints_ejected",
      help: "Endpoints currently ejected, by destination.",
      labelNames: ["destination"],
    }),
    upstreamCx: registry.counter({
      name: "remora_upstream_cx_total",
      help: "Upstream connections used or attempted, by result.",
      labelNames: ["destination", "endpoint", "result"],
    }),
    tlsHandshakes: registry.counter({
      name: "remora_tls_handshakes_total",
      help: "TLS handshakes, by direction and result.",
      labelNames: ["direction", "result"],
    }),
    certExpiry: registry.gauge({
      name: "remora_cert_expiry_timestamp_seconds",
      help: "Expiry of the sidecar's certificate, Unix seconds.",
      labelNames: ["identity"],
    }),
    inboundDenied: registry.counter({
      name: "remora_inbound_denied_total",
      help: "Inbound connections or requests refused, by reason.",
      labelNames: ["reason"],
    }),
    inboundTls: registry.counter({
      name: "remora_inbound_tls_requests_total",
      help: "Requests the inbound listener received, by transport: mtls or plaintext.",
      labelNames: ["tls"],
    }),
    faultsInjected: registry.counter({
      name: "remora_faults_injected_total",
      help: "Faults injected by route.rules[].fault, by destination, rule and kind (delay or abort).",
      labelNames: ["destination", "rule", "kind"],
    }),
    mirrored: registry.counter({
      name: "remora_mirrored_requests_total",
      help: "Request copies sent by route.rules[].mirror, by destination, mirror destination and result.",
      labelNames: ["destination", "mirror", "result"],
    }),
    rateLimited: registry.counter({
      name: "remora_rate_limited_total",
      help: "Requests answered 429 by a local rate limit, by destination and rule (* for the destination-wide limit).",
      labelNames: ["destination", "rule"],
    }),
    retriesBudgetExhausted: registry.counter({
      name: "remora_retries_budget_exhausted_total",
      help: "Retries not sent because the destination's retry budget was spent, by destination.",
      labelNames: ["destination"],
    }),
    overflow: registry.counter({
      name: "remora_overflow_total",
      help: "Requests answered 503 by a circuit breaker, by destination and breaker.",
      labelNames: ["destination", "breaker"],
    }),
    tcpConnections: registry.counter({
      name: "remora_tcp_connections_total",
      help: "Tunnelled and opaque TCP connections, by direction, destination and result of opening them.",
      labelNames: ["direction", "destination", "result"],
    }),
    tcpBytes: registry.counter({
      name: "remora_tcp_bytes_total",
      help: "Bytes through tunnels and opaque TCP, by direction, destination and flow (sent by the connecting side, or received by it).",
      labelNames: ["direction", "destination", "flow"],
    }),
    tcpActive: registry.gauge({
      name: "remora_tcp_active_connections",
      help: "Tunnelled and opaque TCP connections open now, by direction and destination.",
      labelNames: ["direction", "destination"],
    }),
    grpcResponses: registry.counter({
      name: "remora_grpc_responses_total",
      help: "gRPC responses, by direction, destination and grpc-status (from the head or the trailers).",
      labelNames: ["direction", "destination", "grpc_status"],
    }),
  };
}

const CODE_CLASSES = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx"];

/** "2xx" for 200..299 and so on. */
export function codeClass(status: number): string {
  return CODE_CLASSES[Math.floor(status / 100)] ?? `${Math.floor(status / 100)}xx`;
}

// Failures that say something about the connection; "status" is an HTTP answer on a
// healthy connection, refused-stream a stream refusal on one, overflow a local limit.
const CX_RESULT: Partial<Record<UpstreamErrorKind | "status", string>> = {
  "connect-failure": "connect_failure",
  reset: "reset",
  timeout: "timeout",
  tls: "tls",
};

/** Applies one outbound event of the request path to the metrics. */
export function recordEvent(m: MeshMetrics, e: MeshEvent): void {
  switch (e.type) {
    case "resolve":
      // Resolution reports every endpoint's availability, which resynchronises the
      // gauge with the outlier detector even if an uneject was missed.
      m.endpointsEjected.set({ destination: e.destination }, unavailable(e.endpoints));
      return;
    case "pick":
      return;
    case "connection":
      m.upstreamCx.inc({ destination: e.destination, endpoint: e.endpoint, result: e.info.reused ? "reused" : "new" });
      // A new connection that reports a peer identity or a handshake time completed mTLS.
      if (!e.info.reused && (e.info.peerIdentity !== undefined || e.info.handshakeMs !== undefined)) {
        m.tlsHandshakes.inc({ direction: "outbound", result: "success" });
      }
      return;
    case "attempt-failed": {
      const result = CX_RESULT[e.kind];
      if (result !== undefined) m.upstreamCx.inc({ destination: e.destination, endpoint: e.endpoint, result });
      if (e.kind === "tls") m.tlsHandshakes.inc({ direction: "outbound", result: "failure" });
      return;
    }
    case "retry":
      m.retries.inc({ destination: e.destination });
      return;
    case "retry-abandoned":
      m.retriesAbandoned.inc({ destination: e.destination });
      return;
    case "response":
      m.requests.inc({ direction: "outbound", destination: e.destination, code_class: codeClass(e.status) });
      m.duration.observe({ direction: "outbound", destination: e.destination }, e.durationMs / 1000);
      return;
    case "eject":
      m.outlierEjections.inc({ destination: e.destination, endpoint: e.endpoint });
      m.endpointsEjected.inc({ destination: e.destination });
      return;
    case "rule":
      return;
    case "fault":
      m.faultsInjected.inc({ destination: e.destination, rule: e.rule, kind: e.kind });
      return;
    case "mirror":
      m.mirrored.inc({ destination: e.destination, mirror: e.mirror, result: e.result });
      return;
    case "rate-limited":
      m.rateLimited.inc({ destination: e.destination, rule: e.rule ?? "*" });
      return;
    case "uneject": {
      const now = m.endpointsEjected.get({ destination: e.destination });
      m.endpointsEjected.set({ destination: e.destination }, Math.max(0, now - 1));
      return;
    }
  }
}

/** Applies one retry-budget refusal or circuit-breaker overflow of the outbound path. */
export function recordLimitEvent(m: MeshMetrics, e: LimitEvent): void {
  if (e.type === "retry-budget-exhausted") m.retriesBudgetExhausted.inc({ destination: e.destination });
  else m.overflow.inc({ destination: e.destination, breaker: e.breaker });
}

/** Counted in a loop: a filtered array per request only to take its length (issue 8). */
function unavailable(endpoints: readonly { available: boolean }[]): number {
  let n = 0;
  for (let i = 0; i < endpoints.length; i++) if (!endpoints[i]!.available) n++;
  return n;
}
