// Rate-limit stage: local token buckets (Envoy's local_ratelimit filter), one per
// destination and one per rule, each per caller sidecar. A request takes a token from
// every bucket that applies; when one is empty it gets 429 with `retry-after`.

import type { Clock } from "../clock.ts";
import type { EventSink } from "../events.ts";
import type { RateLimit } from "../policy/types.ts";
import type { Stage } from "./context.ts";
import { destinationOf } from "./context.ts";
import { routedOf } from "./match.ts";

export class TokenBucket {
  readonly limit: RateLimit;
  #tokens: number;
  #lastMs: number;

  constructor(limit: RateLimit, nowMs: number) {
    this.limit = limit;
    this.#tokens = limit.burst;
    this.#lastMs = nowMs;
  }

  #refill(nowMs: number): void {
    const elapsed = Math.max(0, nowMs - this.#lastMs);
    this.#tokens = Math.min(this.limit.burst, this.#tokens + (elapsed * this.limit.requestsPerSecond) / 1000);
    this.#lastMs = nowMs;
  }

  /** Whether a token is there now. */
  available(nowMs: number): boolean {
    this.#refill(nowMs);
    return this.#tokens >= 1;
  }

  take(): void {
    this.#tokens -= 1;
  }

  /** Whole seconds until a token is there (at least 1), for `retry-after` (RFC 9110 §10.2.3). */
  retryAfterSeconds(): number {
    return Math.max(1, Math.ceil((1 - this.#tokens) / this.limit.requestsPerSecond));
  }
}

const sameLimit = (a: RateLimit, b: RateLimit) => a.requestsPerSecond === b.requestsPerSecond && a.burst === b.burst;

export function rateLimit(deps: { clock: Clock; onEvent?: EventSink }): Stage {
  // Keyed by destination and rule name so buckets survive config updates that keep the limit.
  const buckets = new Map<string, TokenBucket>();
  const bucket = (key: string, limit: RateLimit): TokenBucket => {
    let b = buckets.get(key);
    if (b === undefined || !sameLimit(b.limit, limit)) buckets.set(key, (b = new TokenBucket(limit, deps.clock.now())));
    return b;
  };
  return (next) => (req, ctx) => {
    const destination = destinationOf(ctx);
    const rule = routedOf(ctx)?.rule;
    const wide = destination.policy.route.rateLimit;
    if (wide === undefined && rule?.rateLimit === undefined) return next(req, ctx);
    const now = deps.clock.now();
    const applicable: [string | undefined, TokenBucket][] = [];
    if (wide !== undefined) applicable.push([undefined, bucket(`${destination.name}\n*`, wide)]);
    if (rule?.rateLimit !== undefined) applicable.push([rule.name, bucket(`${destination.name}\n${rule.name}`, rule.rateLimit)]);
    const empty = applicable.find(([, b]) => !b.available(now));
    if (empty !== undefined) {
      const [ruleName, b] = empty;
      const retryAfterS = b.retryAfterSeconds();
      deps.onEvent?.({ type: "rate-limited", requestId: ctx.requestId, destination: destination.name, ...(ruleName !== undefined ? { rule: ruleName } : {}), retryAfterS });
      // Envoy's local rate limit answer, plus the standard hint of when to come back.
      return Promise.resolve(
        new Response("local_rate_limited\n", {
          status: 429,
          headers: { "content-type": "text/plain; charset=utf-8", "retry-after": String(retryAfterS) },
        }),
      );
    }
    for (const [, b] of applicable) b.take();
    return next(req, ctx);
  };
}
