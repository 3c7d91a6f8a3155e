// What one attempt came to: a response status, or a local failure without a response.
// Retry decisions and outlier detection both reason about this, never about raw errors.

import type { UpstreamErrorKind } from "../upstream.ts";

export type AttemptOutcome =
  /** `grpcStatus`: the grpc-status of the response head (a trailers-only gRPC answer), if any. */
  | { readonly kind: "status"; readonly status: number; readonly grpcStatus?: number }
  | { readonly kind: UpstreamErrorKind };

export function describeOutcome(outcome: AttemptOutcome): string {
  if (outcome.kind !== "status") return outcome.kind;
  return outcome.grpcStatus === undefined ? `status ${outcome.status}` : `status ${outcome.status} grpc-status ${outcome.grpcStatus}`;
}
