// Whether retry_on allows retrying an attempt's outcome, exactly as Envoy decides it
// (router_filter.rst x-envoy-retry-on; retry_policy_impl.cc wouldRetryFromReset;
// retry_state_impl.cc for per-try timeouts). See docs/semantics.md section 1.

import type { RetryOn, RetryPolicy } from "../policy/types.ts";
import type { AttemptOutcome } from "./outcome.ts";
import { grpcRetryCondition } from "./grpc.ts";

const GATEWAY_ERRORS: ReadonlySet<number> = new Set([502, 503, 504]);
/** Envoy's only "retriable 4xx": 409 Conflict. */
const RETRIABLE_4XX = 409;

/** The retry_on conditions under which a local failure (no response) is retried. */
const LOCAL_FAILURE_CONDITIONS: Readonly<Record<Exclude<AttemptOutcome["kind"], "status">, readonly RetryOn[]>> = {
  // Any reset (connection failure, refused stream, remote reset) is retriable under
  // reset, 5xx and gateway-error; connect-failure and refused-stream match only their own.
  "connect-failure": ["5xx", "gateway-error", "reset", "connect-failure"],
  // A rejected peer certificate means the handshake never completed: a connect failure.
  tls: ["5xx", "gateway-error", "reset", "connect-failure"],
  reset: ["5xx", "gateway-error", "reset"],
  "refused-stream": ["5xx", "gateway-error", "reset", "refused-stream"],
  // A per-try timeout is treated as a 504 for that attempt: only 5xx / gateway-error.
  timeout: ["5xx", "gateway-error"],
  // A local circuit-breaker overflow is never retried.
  overflow: [],
};

export function isRetriable(outcome: AttemptOutcome, policy: RetryPolicy): boolean {
  const on = policy.retryOn;
  if (outcome.kind !== "status") return LOCAL_FAILURE_CONDITIONS[outcome.kind].some((c) => on.has(c));
  const status = outcome.status;
  if (on.has("5xx") && status >= 500 && status <= 599) return true;
  if (on.has("gateway-error") && GATEWAY_ERRORS.has(status)) return true;
  if (on.has("retriable-4xx") && status === RETRIABLE_4XX) return true;
  if (on.has("retriable-status-codes") && policy.retriableStatusCodes.includes(status)) return true;
  // Envoy's x-envoy-retry-grpc-on reads grpc-status from the response headers only.
  const grpc = outcome.grpcStatus === undefined ? undefined : grpcRetryCondition(outcome.grpcStatus);
  if (grpc !== undefined && on.has(grpc)) return true;
  return false;
}
