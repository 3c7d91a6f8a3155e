// Every default of the policy model in one place, each with where it comes from
// (Envoy's proto defaults, Istio's retry default; see the semantics reference).

import type { CircuitBreakers, OutlierPolicy, Policy, RetryBudget, RetryOn, RetryPolicy } from "./types.ts";

/** Envoy RouteAction.timeout default; covers all attempts and back-off. */
export const DEFAULT_TIMEOUT_MS = 15_000;

/** Istio's default when retry_policy is present without num_retries, and when it is absent. */
export const DEFAULT_NUM_RETRIES = 2;

/** Istio's default retry conditions (Envoy names; Istio also lists gRPC ones remora does not speak). */
export const DEFAULT_RETRY_ON: readonly RetryOn[] = ["connect-failure", "refused-stream", "retriable-status-codes"];

/** Istio adds 503 to the retriable status codes of its default policy. */
export const DEFAULT_RETRIABLE_STATUS_CODES: readonly number[] = [503];

/** Envoy: base 25 ms (upstream.base_retry_backoff_ms), cap 10 x base. */
export const DEFAULT_BACKOFF_BASE_MS = 25;
export const BACKOFF_MAX_FACTOR = 10;

/** Bodies up to 64 KiB are buffered for replay (Linkerd's limit; Envoy's is per listener). */
export const DEFAULT_RETRY_BUFFER_BYTES = 65_536;

/** Envoy OutlierDetection proto defaults, except max_ejection_time which parse.ts raises to base if larger. */
export const DEFAULT_OUTLIER: Readonly<OutlierPolicy> = {
  consecutive5xx: 5,
  consecutiveGatewayFailure: 5,
  intervalMs: 10_000,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 10,
};

/**
 * Linkerd's ServiceProfile retryBudget defaults (retryRatio 0.2, minRetriesPerSecond 10,
 * ttl 10s): on for every destination, so a failing service is not hit with a retry storm.
 */
export const DEFAULT_RETRY_BUDGET: Readonly<RetryBudget> = { retryRatio: 0.2, minRetriesPerSecond: 10, ttlMs: 10_000 };

/** Envoy's default cluster thresholds (1024 each); remora's per-endpoint limit is off by default. */
export const DEFAULT_CIRCUIT_BREAKERS: Readonly<CircuitBreakers> = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024 };

/** The retry policy of a route that has none: Istio's default, per_try_timeout unset. */
export function defaultRetryPolicy(): RetryPolicy {
  return {
    retryOn: new Set(DEFAULT_RETRY_ON),
    numRetries: DEFAULT_NUM_RETRIES,
    retriableStatusCodes: [...DEFAULT_RETRIABLE_STATUS_CODES],
    backoff: { baseMs: DEFAULT_BACKOFF_BASE_MS, maxMs: DEFAULT_BACKOFF_BASE_MS * BACKOFF_MAX_FACTOR },
  };
}

/**
 * The policy of a destination nobody wrote one for: round robin, Istio's retries, 15 s
 * timeout, mTLS, no outlier detection. The name is not validated here: callers pass a
 * destination they already resolved.
 */
export function defaultPolicy(destination: string): Policy {
  return {
    route: {
      destination,
      loadBalancer: "round_robin",
      retry: defaultRetryPolicy(),
      timeoutMs: DEFAULT_TIMEOUT_MS,
      tls: { mode: "MUTUAL" },
      retryBufferBytes: DEFAULT_RETRY_BUFFER_BYTES,
    },
  };
}
