// The outbound request path of a sidecar (and of meshFetch): a pure function of injected
// interfaces, built from named stages, logical name -> destination -> attempt -> endpoint.

import type { Clock, Random } from "./clock.ts";
import type { Endpoint } from "./endpoint.ts";
import type { EventSink } from "./events.ts";
import type { Policy } from "./policy/types.ts";
import type { Upstream } from "./upstream.ts";
import { balance } from "./pipeline/balance.ts";
import { bufferBody } from "./pipeline/buffer-body.ts";
import { circuitBreakers, type LimitSink } from "./pipeline/circuit-breaker.ts";
import { compose, type RequestContext } from "./pipeline/context.ts";
import { connectDestination, type Connected, type Opener } from "./pipeline/connect.ts";
import { buildTable, type Destination } from "./pipeline/destination.ts";
import { endpoint } from "./pipeline/endpoint.ts";
import { faultAbort, faultDelay } from "./pipeline/fault.ts";
import { headersRewrite } from "./pipeline/headers-rewrite.ts";
import { match } from "./pipeline/match.ts";
import { mirror } from "./pipeline/mirror.ts";
import { rateLimit } from "./pipeline/rate-limit.ts";
import { split } from "./pipeline/split.ts";
import { observe } from "./pipeline/observe.ts";
import { retry } from "./pipeline/retry.ts";
import { retryBudget, upstreamAttempt } from "./pipeline/retry-budget.ts";
import { route } from "./pipeline/route.ts";
import { routeTimeout } from "./pipeline/route-timeout.ts";
import { grpcDeadline } from "./pipeline/grpc-deadline.ts";
import { send } from "./pipeline/send.ts";
import { logicalName } from "./router.ts";

export interface OutboundConfig {
  policies: readonly Policy[];
  /** Endpoints per logical destination name; these keys are the routable names. */
  endpoints: Readonly<Record<string, readonly Endpoint[]>>;
}

export interface OutboundDeps {
  send: Upstream;
  clock: Clock;
  random: Random;
  onEvent?: EventSink;
  /** Retry-budget refusals and circuit-breaker overflows (remora_retries_budget_exhausted_total, remora_overflow_total). */
  onLimit?: LimitSink;
  /** Used when the request carries no x-request-id header. */
  requestId?: () => string;
  /** Policy for a destination that has endpoints but no policy of its own. */
  defaultPolicy: (destination: string) => Policy;
}

export interface EndpointStatus {
  address: string;
  identity?: string;
  /** Not ejected by outlier detection. */
  available: boolean;
  ejected: boolean;
  /** When an ejected endpoint returns (the first interval sweep after its ejection time). */
  ejectedUntilMs?: number;
  ejectionCount: number;
  activeRequests: number;
  consecutive5xx: number;
}

export interface DestinationStatus {
  name: string;
  policy: Policy;
  endpoints: EndpointStatus[];
}

/** A per-destination change (on-demand config): only the named destinations are touched. */
export interface OutboundPatch {
  /** Destinations added or replaced; a destination without a policy gets the default policy. */
  set: Readonly<Record<string, { policy?: Policy; endpoints: readonly Endpoint[] }>>;
  /** Destinations dropped. */
  remove?: readonly string[];
}

export interface Outbound {
  handle(req: Request): Promise<Response>;
  /** Atomic swap; balancer and outlier state of endpoints that remain (by address) is kept. */
  update(config: OutboundConfig): void;
  /** Atomic, O(changed) update of some destinations; the others keep their table entries untouched. */
  patch(changes: OutboundPatch): void;
  destinations(): DestinationStatus[];
  /** One connection (tunnel, opaque TCP) to `name`: balanced, outlier-aware, connect failures retried per retry_on (src/core/pipeline/connect.ts). */
  connect<T>(name: string, open: Opener<T>): Promise<Connected<T>>;
}

export function createOutbound(config: OutboundConfig, deps: OutboundDeps): Outbound {
  let table: Map<string, Destination> = buildTable(config, new Map(), deps);
  const breakers = circuitBreakers(deps);

  const handler = compose(
    [
      observe(deps), //            the final `response` event, whatever answered
      route((name) => table.get(name), deps), // logical name -> destination; 404 / 503
      match(), //                  first matching route.rules entry: its timeout and retries; 404
      rateLimit(deps), //          destination and rule token buckets: 429
      split(deps), //              weighted subset of the destination: 503 when empty
      headersRewrite(), //         rule's header edits and path rewrite
      faultDelay(deps), //         injected delay; picks requests to abort
      breakers.requests, //        circuit_breakers.max_requests; an attempt's overflow answers 503
      bufferBody(), //             keep a replayable copy of small bodies
      mirror((name) => table.get(name), deps), // fire-and-forget copy to another destination
      routeTimeout(deps), //       route.timeout bounds all attempts and back-off: 504
      grpcDeadline(deps), //       grpc-timeout bounds the whole call: grpc-status 4
      retryBudget(deps), //        each request deposits; retries withdraw (retry_budget)
      retry(deps), //              attempts, retry_on, back-off
      breakers.connections, //     max_connections, then pending up to max_pending_requests
      balance(deps), //            panic threshold, previous hosts, load balancer
      faultAbort(deps), //         injected abort, as this attempt's answer
      breakers.perEndpoint, //     max_requests_per_endpoint
      upstreamAttempt(), //        from here the attempt loads the endpoint: later retries spend budget
      endpoint(), //               in-flight count, outlier detection
    ],
    send(deps.send, deps), //      per-try timeout, fresh body, the injected Upstream
  );

  return {
    handle(req) {
      const ctx: RequestContext = {
        requestId: req.headers.get("x-request-id") ?? deps.requestId?.() ?? crypto.randomUUID(),
        startMs: deps.clock.now(),
        clientSignal: req.signal,
        body: { kind: "none" },
        attempts: 0,
        tried: new Set(),
      };
      return handler(req, ctx);
    },
    update(next) {
      table = buildTable(next, table, deps);
    },
    patch({ set, remove = [] }) {
      // Built first (it may throw), then written in one synchronous pass: no request sees half.
      const policies = Object.values(set).flatMap((d) => (d.policy === undefined ? [] : [d.policy]));
      const built = buildTable({ policies, endpoints: Object.fromEntries(Object.entries(set).map(([n, d]) => [n, d.endpoints])) }, table, deps);
      for (const name of remove) table.delete(logicalName(name));
      for (const [name, d] of built) table.set(name, d);
    },
    destinations() {
      return [...table.values()].map(status);
    },
    connect(name, open) {
      return connectDestination((n) => table.get(n), deps, name, open);
    },
  };
}

function status(d: Destination): DestinationStatus {
  d.outlier?.sweep(d.endpoints);
  return {
    name: d.name,
    policy: d.policy,
    endpoints: d.endpoints.map((e) => ({
      address: e.address,
      ...(e.endpoint.identity !== undefined ? { identity: e.endpoint.identity } : {}),
      available: !e.health.ejected,
      ejected: e.health.ejected,
      ...(e.health.ejectedUntilMs !== undefined ? { ejectedUntilMs: e.health.ejectedUntilMs } : {}),
      ejectionCount: e.health.ejectionCount,
      activeRequests: e.activeRequests,
      consecutive5xx: e.health.consecutive5xx,
    })),
  };
}
