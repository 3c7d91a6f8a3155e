// The normalised policy model: what a policy document means once parsed and defaulted.
// Field meanings follow ../../../docs/policy.md (Envoy retry/outlier semantics, Istio TLS names).

export type LoadBalancer = "round_robin" | "least_request" | "random";

export type RetryOn =
  | "5xx"
  | "gateway-error"
  | "connect-failure"
  | "reset"
  | "refused-stream"
  | "retriable-4xx"
  | "retriable-status-codes";

export interface RetryPolicy {
  retryOn: ReadonlySet<RetryOn>;
  /** Retries, not attempts: up to 1 + numRetries attempts. */
  numRetries: number;
  /** Per attempt, ms; undefined = bounded only by the route timeout. */
  perTryTimeoutMs?: number;
  /** Used with `retriable-status-codes`. */
  retriableStatusCodes: readonly number[];
  /** Fully jittered exponential back-off (Envoy): base and cap, ms. */
  backoff: { baseMs: number; maxMs: number };
}

export interface TlsOrigination {
  /** ISTIO_MUTUAL is accepted in documents and normalised to MUTUAL. */
  mode: "MUTUAL" | "SIMPLE" | "DISABLE";
}

export interface RoutePolicy {
  destination: string;
  loadBalancer: LoadBalancer;
  retry: RetryPolicy;
  /** Overall route timeout covering all attempts and back-off, ms; 0 disables it. */
  timeoutMs: number;
  tls: TlsOrigination;
  /** Request bodies up to this many bytes are buffered so they can be replayed on retry. */
  retryBufferBytes: number;
}

export interface OutlierPolicy {
  consecutive5xx: number;
  consecutiveGatewayFailure: number;
  intervalMs: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  maxEjectionPercent: number;
}

export interface Policy {
  route: RoutePolicy;
  /** Undefined: no outlier detection for this destination. */
  outlier?: OutlierPolicy;
}
