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
  | "retriable-status-codes"
  // gRPC conditions (Envoy's x-envoy-retry-grpc-on), read from grpc-status in the response head.
  | "cancelled"
  | "deadline-exceeded"
  | "internal"
  | "resource-exhausted"
  | "unavailable";

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
  /** Destination-wide local rate limit, per caller sidecar; undefined: none. */
  rateLimit?: RateLimit;
  /** Traffic rules, first match wins; undefined: every request takes the route as above. */
  rules?: readonly RouteRule[];
}

/** How one string (path, header, query parameter) is compared; `present` ignores `value`. */
export interface ValueMatch {
  kind: "exact" | "prefix" | "regex" | "present";
  value: string;
}

/** All given conditions must hold (AND); a rule's list of matches is an OR. */
export interface RequestMatch {
  path?: ValueMatch;
  /** Uppercase. */
  method?: string;
  /** Lowercase header names. */
  headers?: Readonly<Record<string, ValueMatch>>;
  queryParams?: Readonly<Record<string, ValueMatch>>;
}

/** One branch of a weighted split; no subset means every endpoint of the destination. */
export interface WeightedSubset {
  subset?: string;
  weight: number;
}

export interface HeaderEdits {
  set: Readonly<Record<string, string>>;
  add: Readonly<Record<string, string>>;
  remove: readonly string[];
}

/** `path` replaces the whole path; `prefix` replaces the path prefix that matched. */
export interface PathRewrite {
  kind: "path" | "prefix";
  value: string;
}

export interface FaultPolicy {
  /** percent: 0-100 of requests. */
  delay?: { ms: number; percent: number };
  abort?: { status: number; percent: number };
  /** Only requests whose headers all match are faulted; undefined: every request of the rule. */
  matchHeaders?: Readonly<Record<string, ValueMatch>>;
}

export interface MirrorPolicy {
  destination: string;
  /** 0-100 of requests. */
  percent: number;
}

/** Token bucket: refills `requestsPerSecond`, holds at most `burst` tokens. */
export interface RateLimit {
  requestsPerSecond: number;
  burst: number;
}

export interface RouteRule {
  name: string;
  /** Empty: matches every request (a default rule). */
  match: readonly RequestMatch[];
  split?: readonly WeightedSubset[];
  requestHeaders?: HeaderEdits;
  responseHeaders?: HeaderEdits;
  rewrite?: PathRewrite;
  /** Overrides the route's timeout, ms. */
  timeoutMs?: number;
  /** Overrides the route's retry policy. */
  retry?: RetryPolicy;
  fault?: FaultPolicy;
  mirror?: MirrorPolicy;
  rateLimit?: RateLimit;
}

/** Endpoints of the destination whose labels include all of these (Istio DestinationRule subsets). */
export interface Subset {
  name: string;
  labels: Readonly<Record<string, string>>;
}

export interface OutlierPolicy {
  consecutive5xx: number;
  consecutiveGatewayFailure: number;
  intervalMs: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  maxEjectionPercent: number;
}

/**
 * Linkerd's retry budget (Tower's TpsBudget): retries may add at most `retryRatio` of the
 * original requests seen over the last `ttlMs`, plus `minRetriesPerSecond` always.
 */
export interface RetryBudget {
  retryRatio: number;
  minRetriesPerSecond: number;
  ttlMs: number;
}

/** Envoy's cluster circuit_breakers thresholds, per caller sidecar and destination. */
export interface CircuitBreakers {
  /** Attempts in flight to the destination (each holds an HTTP/1.1 connection). */
  maxConnections: number;
  /** Attempts waiting for one of maxConnections. */
  maxPendingRequests: number;
  /** Requests in flight to the destination, retries included. */
  maxRequests: number;
  /** Attempts in flight to one endpoint; undefined: no limit. */
  maxRequestsPerEndpoint?: number;
}

export interface Policy {
  route: RoutePolicy;
  /** Undefined: no outlier detection for this destination. */
  outlier?: OutlierPolicy;
  /** Undefined: the default budget (DEFAULT_RETRY_BUDGET); there is always one. */
  retryBudget?: RetryBudget;
  /** Undefined: Envoy's default thresholds (DEFAULT_CIRCUIT_BREAKERS); there always are some. */
  circuitBreakers?: CircuitBreakers;
  /** Named groups of endpoints that rules split traffic between; undefined: none. */
  subsets?: readonly Subset[];
}
