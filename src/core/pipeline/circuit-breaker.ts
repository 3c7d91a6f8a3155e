// Circuit breaking (Envoy's cluster circuit_breakers, circuit_breaking.rst): per caller
// sidecar and destination, bounds on requests in flight, attempts in flight (connections)
// and attempts queued for one, and attempts in flight per endpoint. Overflow answers 503
// with `x-remora-overflow: <breaker>` (Envoy's x-envoy-overflow) and is never retried.

import type { Clock } from "../clock.ts";
import { DEFAULT_CIRCUIT_BREAKERS } from "../policy/defaults.ts";
import type { CircuitBreakers } from "../policy/types.ts";
import { discardResponse } from "../retry/signals.ts";
import { UpstreamError } from "../upstream.ts";
import type { RequestContext, Stage } from "./context.ts";
import { destinationOf, endpointOf, stopSignalOf } from "./context.ts";
import type { Destination } from "./destination.ts";
import { localReply } from "./local-reply.ts";

export type Breaker = "max_connections" | "max_pending_requests" | "max_requests" | "max_requests_per_endpoint";

/**
 * Load-bounding decisions of the request path, counted as
 * remora_retries_budget_exhausted_total and remora_overflow_total.
 */
export type LimitEvent =
  | { type: "retry-budget-exhausted"; requestId: string; destination: string; attempt: number }
  | { type: "overflow"; requestId: string; destination: string; breaker: Breaker; endpoint?: string };

export type LimitSink = (e: LimitEvent) => void;

/** An attempt a circuit breaker refused: kind "overflow", which retry_on never retries (Envoy). */
export class OverflowError extends UpstreamError {
  readonly breaker: Breaker;
  constructor(breaker: Breaker, endpoint: string, message: string) {
    super("overflow", endpoint, message);
    this.breaker = breaker;
    this.name = "OverflowError";
  }
}

/** Envoy's overflow local reply, with the breaker named in a header and the body. */
export function overflowReply(breaker: Breaker, why: string): Response {
  const res = localReply(503, `upstream connect error or disconnect/reset before headers. reset reason: overflow (remora: ${why})`);
  res.headers.set("x-remora-overflow", breaker);
  return res;
}

export function breakersOf(destination: Destination): Readonly<CircuitBreakers> {
  return destination.policy.circuitBreakers ?? DEFAULT_CIRCUIT_BREAKERS;
}

interface Waiter {
  resolve(): void;
}

/** What is in flight to one destination right now. */
class InFlight {
  requests = 0;
  attempts = 0;
  readonly pending: Waiter[] = [];

  /** Hands a freed connection to the oldest pending attempt, if any. */
  release(): void {
    this.attempts--;
    const waiter = this.pending.shift();
    if (waiter !== undefined) {
      this.attempts++;
      waiter.resolve();
    }
  }

  /** Resolves once a connection is handed over; rejects (leaving the queue) if `signal` aborts. */
  wait(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const onAbort = (): void => {
        const i = this.pending.indexOf(waiter);
        if (i >= 0) this.pending.splice(i, 1);
        reject(signal.reason);
      };
      const waiter: Waiter = {
        resolve: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      this.pending.push(waiter);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}

/** Which breaker refused an attempt of this request, so the request stage can answer for it. */
const refused = new WeakMap<RequestContext, Breaker>();

export interface CircuitBreakerStages {
  /** Above the retry stage: max_requests; turns an attempt's overflow into the 503 answer. */
  requests: Stage;
  /** Between retry and balance: max_connections, queueing up to max_pending_requests. */
  connections: Stage;
  /** Just above the endpoint stage (after fault aborts): max_requests_per_endpoint. */
  perEndpoint: Stage;
  /** Requests, attempts and pending attempts per destination now (for tests and status). */
  inFlight(destination: string): { requests: number; attempts: number; pending: number };
}

export function circuitBreakers(deps: { clock: Clock; onLimit?: LimitSink }): CircuitBreakerStages {
  // Keyed by name, so counts survive config swaps that rebuild the destination.
  const table = new Map<string, InFlight>();
  const of = (name: string): InFlight => {
    let f = table.get(name);
    if (f === undefined) table.set(name, (f = new InFlight()));
    return f;
  };
  const overflow = (ctx: RequestContext, destination: string, breaker: Breaker, endpoint?: string): void => {
    refused.set(ctx, breaker);
    deps.onLimit?.({ type: "overflow", requestId: ctx.requestId, destination, breaker, ...(endpoint !== undefined ? { endpoint } : {}) });
  };

  const requests: Stage = (next) => async (req, ctx) => {
    const destination = destinationOf(ctx);
    const limits = breakersOf(destination);
    const flight = of(destination.name);
    if (flight.requests >= limits.maxRequests) {
      overflow(ctx, destination.name, "max_requests");
      return overflowReply("max_requests", `circuit breaker max_requests of "${destination.name}" is full: ${flight.requests} requests in flight, limit ${limits.maxRequests}`);
    }
    flight.requests++;
    try {
      const res = await next(req, ctx);
      const breaker = refused.get(ctx);
      if (breaker === undefined) return res;
      // An overflow is never retried, so it was the last attempt and this is its answer.
      discardResponse(res);
      return overflowReply(breaker, `circuit breaker ${breaker} of "${destination.name}" is full`);
    } finally {
      flight.requests--;
    }
  };

  const connections: Stage = (next) => async (req, ctx) => {
    const destination = destinationOf(ctx);
    const limits = breakersOf(destination);
    const flight = of(destination.name);
    if (flight.attempts < limits.maxConnections) {
      flight.attempts++;
    } else if (flight.pending.length >= limits.maxPendingRequests) {
      overflow(ctx, destination.name, "max_pending_requests");
      throw new OverflowError(
        "max_pending_requests",
        "",
        `Circuit breaker max_pending_requests of "${destination.name}" is full: ${flight.pending.length} attempts wait for one of ${limits.maxConnections} connections.`,
      );
    } else {
      // Waits for a connection like Envoy's pending request; the route timeout still bounds it.
      await flight.wait(stopSignalOf(ctx));
    }
    try {
      return await next(req, ctx);
    } finally {
      flight.release();
    }
  };

  const perEndpoint: Stage = (next) => (req, ctx) => {
    const destination = destinationOf(ctx);
    const max = breakersOf(destination).maxRequestsPerEndpoint;
    const ep = endpointOf(ctx);
    if (max !== undefined && ep.activeRequests >= max) {
      overflow(ctx, destination.name, "max_requests_per_endpoint", ep.address);
      return Promise.reject(
        new OverflowError(
          "max_requests_per_endpoint",
          ep.address,
          `Circuit breaker max_requests_per_endpoint of "${destination.name}" is full at ${ep.address}: ${ep.activeRequests} attempts in flight, limit ${max}.`,
        ),
      );
    }
    return next(req, ctx);
  };

  return {
    requests,
    connections,
    perEndpoint,
    inFlight(name) {
      const f = table.get(name);
      return { requests: f?.requests ?? 0, attempts: f?.attempts ?? 0, pending: f?.pending.length ?? 0 };
    },
  };
}
