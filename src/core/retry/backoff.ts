// Envoy's fully jittered exponential back-off (router_filter.rst, x-envoy-max-retries):
// retry N (1-based) waits uniformly in [0, min(max, (2^N - 1) * base)) ms.

import type { Random } from "../clock.ts";
import type { RetryPolicy } from "../policy/types.ts";

export function backoffCeilingMs(retry: number, backoff: RetryPolicy["backoff"]): number {
  const exponential = (2 ** Math.max(1, retry) - 1) * backoff.baseMs;
  return Math.min(backoff.maxMs, exponential);
}

export function backoffMs(retry: number, backoff: RetryPolicy["backoff"], random: Random): number {
  const ceiling = backoffCeilingMs(retry, backoff);
  if (ceiling <= 0) return 0;
  return Math.max(0, Math.min(Math.ceil(ceiling) - 1, Math.floor(random() * ceiling)));
}
