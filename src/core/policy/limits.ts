// The load-bounding parts of a policy document: `retry_budget` (Linkerd's ServiceProfile
// retryBudget) and `circuit_breakers` (Envoy's cluster thresholds), checked, defaulted,
// and written back. schema.ts assembles the schemas; parse.ts calls the rest.

import * as v from "valibot";
import { formatDuration } from "../duration.ts";
import { describeValue, durationField, intField, invalid, type ValidateOptions } from "../validation.ts";
import { DEFAULT_CIRCUIT_BREAKERS, DEFAULT_RETRY_BUDGET } from "./defaults.ts";
import type { DurationText } from "./schema.ts";
import type { CircuitBreakers, RetryBudget } from "./types.ts";

export interface RetryBudgetDocument {
  /** Retries allowed per original request over `ttl` (0.2: one retry per five requests). 0-1000. Default 0.2. */
  retry_ratio?: number;
  /** Retries always allowed per second, whatever the ratio. Default 10. */
  min_retries_per_second?: number;
  /** Sliding window over which requests count toward the ratio, 1s-60s. Default 10s. */
  ttl?: DurationText;
}

export interface CircuitBreakersDocument {
  /** Attempts in flight to the destination. Default 1024. */
  max_connections?: number;
  /** Attempts waiting for a connection; beyond it, 503. Default 1024. */
  max_pending_requests?: number;
  /** Requests in flight to the destination; beyond it, 503. Default 1024. */
  max_requests?: number;
  /** Attempts in flight to one endpoint; beyond it, 503. Default: no limit. */
  max_requests_per_endpoint?: number;
}

// Linkerd's RetryBudget (linkerd2-proxy-api) and Tower's TpsBudget::new bound these.
const MAX_RETRY_RATIO = 1000;
const MIN_TTL_MS = 1_000;
const MAX_TTL_MS = 60_000;

export const retryBudgetSchema = v.strictObject({
  retry_ratio: v.optional(
    v.pipe(
      v.number((issue) => `expected a ratio like 0.2 but got ${describeValue(issue.input)}`),
      v.check(
        (n) => Number.isFinite(n) && n >= 0 && n <= MAX_RETRY_RATIO,
        (issue) => `${describeValue(issue.input)} is not a ratio from 0 to ${MAX_RETRY_RATIO}`,
      ),
    ),
  ),
  min_retries_per_second: v.optional(intField(0)),
  ttl: v.optional(durationField({ positive: true })),
});

export const circuitBreakersSchema = v.strictObject({
  max_connections: v.optional(intField(1)),
  max_pending_requests: v.optional(intField(0)),
  max_requests: v.optional(intField(1)),
  max_requests_per_endpoint: v.optional(intField(1)),
});

type CheckedBudget = v.InferOutput<typeof retryBudgetSchema>;
type CheckedBreakers = v.InferOutput<typeof circuitBreakersSchema>;

export function retryBudget(b: CheckedBudget, options: ValidateOptions): RetryBudget {
  const ttlMs = b.ttl ?? DEFAULT_RETRY_BUDGET.ttlMs;
  if (ttlMs < MIN_TTL_MS || ttlMs > MAX_TTL_MS) {
    invalid("retry_budget.ttl", `${formatDuration(ttlMs)} is outside 1s to 1m, the window Linkerd's retry budget allows`, options);
  }
  return {
    retryRatio: b.retry_ratio ?? DEFAULT_RETRY_BUDGET.retryRatio,
    minRetriesPerSecond: b.min_retries_per_second ?? DEFAULT_RETRY_BUDGET.minRetriesPerSecond,
    ttlMs,
  };
}

export function circuitBreakers(c: CheckedBreakers): CircuitBreakers {
  const out: CircuitBreakers = {
    maxConnections: c.max_connections ?? DEFAULT_CIRCUIT_BREAKERS.maxConnections,
    maxPendingRequests: c.max_pending_requests ?? DEFAULT_CIRCUIT_BREAKERS.maxPendingRequests,
    maxRequests: c.max_requests ?? DEFAULT_CIRCUIT_BREAKERS.maxRequests,
  };
  if (c.max_requests_per_endpoint !== undefined) out.maxRequestsPerEndpoint = c.max_requests_per_endpoint;
  return out;
}

export function retryBudgetDocument(b: RetryBudget): RetryBudgetDocument {
  return { retry_ratio: b.retryRatio, min_retries_per_second: b.minRetriesPerSecond, ttl: formatDuration(b.ttlMs) };
}

export function circuitBreakersDocument(c: CircuitBreakers): CircuitBreakersDocument {
  const doc: CircuitBreakersDocument = {
    max_connections: c.maxConnections,
    max_pending_requests: c.maxPendingRequests,
    max_requests: c.maxRequests,
  };
  if (c.maxRequestsPerEndpoint !== undefined) doc.max_requests_per_endpoint = c.maxRequestsPerEndpoint;
  return doc;
}

// The hand-written document types must stay the schemas' input types.
const sameTypes = [
  (d: v.InferInput<typeof retryBudgetSchema>): RetryBudgetDocument => d,
  (d: RetryBudgetDocument): v.InferInput<typeof retryBudgetSchema> => d,
  (d: v.InferInput<typeof circuitBreakersSchema>): CircuitBreakersDocument => d,
  (d: CircuitBreakersDocument): v.InferInput<typeof circuitBreakersSchema> => d,
];
void sameTypes;
