// Balance stage: picks this attempt's endpoint. Ejected endpoints are skipped unless
// fewer than half are available (Envoy's 50% panic threshold, panic_threshold.rst); a
// retry prefers endpoints this request has not tried (Envoy's previous_hosts predicate).

import type { Random } from "../clock.ts";
import type { EventSink } from "../events.ts";
import type { Stage } from "./context.ts";
import { destinationOf } from "./context.ts";
import type { EndpointState } from "./destination.ts";

export function candidatesFor(endpoints: readonly EndpointState[], tried: ReadonlySet<string>): readonly EndpointState[] {
  // The usual first attempt, nothing ejected and nothing tried: every endpoint, no arrays built.
  if (tried.size === 0 && endpoints.every(notEjected)) return endpoints;
  const available = endpoints.filter((e) => !e.health.ejected);
  const pool = available.length * 2 < endpoints.length || available.length === 0 ? endpoints : available;
  const untried = pool.filter((e) => !tried.has(e.address));
  return untried.length > 0 ? untried : pool;
}

function notEjected(e: EndpointState): boolean {
  return !e.health.ejected;
}

export function balance(deps: { random: Random; onEvent?: EventSink }): Stage {
  return (next) => (req, ctx) => {
    const destination = destinationOf(ctx);
    destination.outlier?.sweep(destination.endpoints);
    const endpoint = destination.balancer.pick(candidatesFor(destination.endpoints, ctx.tried), deps.random);
    ctx.tried.add(endpoint.address);
    ctx.endpoint = endpoint;
    deps.onEvent?.({
      type: "pick",
      requestId: ctx.requestId,
      destination: destination.name,
      endpoint: endpoint.address,
      attempt: ctx.attempts,
      balancer: destination.balancer.name,
    });
    return next(req, ctx);
  };
}
