// Fault injection (Istio HTTPFaultInjection, Envoy's fault filter), in the caller's sidecar.
// A delay holds the whole request once, before any attempt. An abort is decided per
// request but injected inside the retry loop, as the first attempt's answer, after the
// endpoint is picked: the caller's retry policy sees it exactly like that endpoint
// answering `status`, so the seed's flapping-replica scenario can be rehearsed on purpose
// (Istio's filter runs before the router, so there its aborts are never retried; see
// docs/policy.md "Fault injection" for why remora differs).

import type { Clock, Random } from "../clock.ts";
import type { EventSink } from "../events.ts";
import type { FaultPolicy } from "../policy/types.ts";
import type { Handler, RequestContext, Stage } from "./context.ts";
import { localReply } from "./local-reply.ts";
import { headersMatch, routedOf, type Routed } from "./match.ts";

/** percent of 100, decided with one draw of `random`. */
export function chance(percent: number, random: Random): boolean {
  return percent >= 100 || (percent > 0 && random() * 100 < percent);
}

function applies(fault: FaultPolicy | undefined, req: Request): fault is FaultPolicy {
  return fault !== undefined && (fault.matchHeaders === undefined || headersMatch(fault.matchHeaders, req.headers));
}

/** Requests chosen for an abort, so the retry loop's first attempt can inject it. */
const aborting = new WeakMap<RequestContext, number>();

/** Per request: the delay (slept on the injected clock) and the abort decision; not async for the requests no fault applies to. */
export function faultDelay(deps: { clock: Clock; random: Random; onEvent?: EventSink }): Stage {
  return (next) => (req, ctx) => {
    const routed = routedOf(ctx);
    const fault = routed?.rule.fault;
    if (routed === undefined || !applies(fault, req)) return next(req, ctx);
    return injected(next, req, ctx, routed, fault, deps);
  };
}

async function injected(next: Handler, req: Request, ctx: RequestContext, routed: Routed, fault: FaultPolicy, deps: { clock: Clock; random: Random; onEvent?: EventSink }): Promise<Response> {
  const base = { requestId: ctx.requestId, destination: ctx.destinationName ?? "", rule: routed.rule.name };
  if (fault.delay !== undefined && chance(fault.delay.percent, deps.random)) {
    deps.onEvent?.({ type: "fault", ...base, kind: "delay", delayMs: fault.delay.ms });
    await deps.clock.sleep(fault.delay.ms, ctx.clientSignal);
  }
  if (fault.abort !== undefined && chance(fault.abort.percent, deps.random)) aborting.set(ctx, fault.abort.status);
  return next(req, ctx);
}

/** Per attempt, below the balance stage: the first attempt of a chosen request answers the abort status. */
export function faultAbort(deps: { onEvent?: EventSink }): Stage {
  return (next) => (req, ctx) => {
    const status = aborting.get(ctx);
    if (status === undefined) return next(req, ctx);
    aborting.delete(ctx);
    deps.onEvent?.({
      type: "fault",
      requestId: ctx.requestId,
      destination: ctx.destinationName ?? "",
      rule: routedOf(ctx)?.rule.name ?? "",
      kind: "abort",
      status,
    });
    // Envoy's fault filter body.
    return Promise.resolve(localReply(status, "fault filter abort"));
  };
}
