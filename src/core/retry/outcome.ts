// What one attempt came to: a response status, or a local failure without a response.
// Retry decisions and outlier detection both reason about this, never about raw errors.

import type { UpstreamErrorKind } from "../upstream.ts";

export type AttemptOutcome = { readonly kind: "status"; readonly status: number } | { readonly kind: UpstreamErrorKind };

export function describeOutcome(outcome: AttemptOutcome): string {
  return outcome.kind === "status" ? `status ${outcome.status}` : outcome.kind;
}
