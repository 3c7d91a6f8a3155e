// Connection-level balancing for tunnels and opaque TCP (docs/protocols.md): the same
// destination table, balancer, outlier state and retry_on as requests, applied per
// connection. Like Envoy's tcp_proxy (max_connect_attempts), a failed connect is retried
// at once on another endpoint, with no back-off: nothing of the client's stream is lost yet.

import type { Endpoint } from "../endpoint.ts";
import { RemoraError } from "../errors.ts";
import type { EventSink } from "../events.ts";
import type { Clock, Random } from "../clock.ts";
import { isRetriable } from "../retry/classify.ts";
import { logicalName } from "../router.ts";
import { UpstreamError, type ConnectionInfo, type OriginationMode } from "../upstream.ts";
import { candidatesFor } from "./balance.ts";
import { availabilityOf } from "./availability.ts";
import type { Destination } from "./destination.ts";

export interface ConnectAttempt {
  tls: OriginationMode;
  /** 1 for the first try. */
  attempt: number;
  /** The adapter reports the connection it made (peer identity, handshake time): metrics and events. */
  onConnection: (info: ConnectionInfo) => void;
}

/** Opens one connection to one endpoint; rejects with an UpstreamError whose kind retry_on reasons about. */
export type Opener<T> = (endpoint: Endpoint, attempt: ConnectAttempt) => Promise<T>;

export interface Connected<T> {
  value: T;
  destination: string;
  endpoint: Endpoint;
  attempts: number;
  /** Call when the connection ends: it counted as an active request on its endpoint (least_request) until then. */
  release(): void;
}

export interface ConnectDeps {
  clock: Clock;
  random: Random;
  onEvent?: EventSink;
  requestId?: () => string;
}

/**
 * Picks an endpoint of `name` and opens a connection to it; a failure retry_on allows is
 * retried on an endpoint not yet tried, up to num_retries times. Throws RemoraError
 * ERR_NO_ROUTE for an unknown name or one without endpoints, the last UpstreamError when
 * attempts run out, and any other error of `open` at once.
 */
export async function connectDestination<T>(lookup: (name: string) => Destination | undefined, deps: ConnectDeps, name: string, open: Opener<T>): Promise<Connected<T>> {
  const logical = logicalName(name);
  const destination = lookup(logical);
  if (destination === undefined) throw new RemoraError("ERR_NO_ROUTE", `no route for host "${name}": no destination of that name is known to this sidecar`);
  if (destination.endpoints.length === 0) throw new RemoraError("ERR_NO_ROUTE", `no endpoints for destination "${logical}"`);
  const requestId = deps.requestId?.() ?? crypto.randomUUID();
  const emit = deps.onEvent ?? (() => {});
  const policy = destination.policy.route;
  const maxAttempts = 1 + Math.max(0, policy.retry.numRetries);
  const tried = new Set<string>();
  destination.outlier?.sweep(destination.endpoints);
  emit({ type: "resolve", requestId, destination: logical, endpoints: availabilityOf(destination) });

  for (let attempt = 1; ; attempt++) {
    destination.outlier?.sweep(destination.endpoints);
    const ep = destination.balancer.pick(candidatesFor(destination.endpoints, tried), deps.random);
    tried.add(ep.address);
    emit({ type: "pick", requestId, destination: logical, endpoint: ep.address, attempt, balancer: destination.balancer.name });
    ep.activeRequests++;
    const startedMs = deps.clock.now();
    try {
      const value = await open(ep.endpoint, {
        tls: policy.tls.mode,
        attempt,
        onConnection: (info) => emit({ type: "connection", requestId, destination: logical, endpoint: ep.address, attempt, info }),
      });
      // A connection made is a success for outlier detection: it ends a run of failures.
      destination.outlier?.record(ep, { kind: "status", status: 200 }, destination.endpoints);
      let released = false;
      return {
        value,
        destination: logical,
        endpoint: ep.endpoint,
        attempts: attempt,
        release: () => {
          if (released) return;
          released = true;
          ep.activeRequests--;
        },
      };
    } catch (e) {
      ep.activeRequests--;
      if (!(e instanceof UpstreamError)) throw e;
      destination.outlier?.record(ep, { kind: e.kind }, destination.endpoints);
      emit({ type: "attempt-failed", requestId, destination: logical, endpoint: ep.address, attempt, kind: e.kind, message: e.message, durationMs: deps.clock.now() - startedMs });
      if (attempt >= maxAttempts || !isRetriable({ kind: e.kind }, policy.retry)) throw e;
      emit({ type: "retry", requestId, destination: logical, attempt: attempt + 1, reason: e.kind, backoffMs: 0 });
    }
  }
}
