// Route-timeout stage: route.timeout bounds every attempt and back-off together; expiry
// answers 504 and is never retried (Envoy router_filter.rst). It covers the request until
// the final response head arrives; 0 disables it.

import type { Clock } from "../clock.ts";
import { deadline } from "../retry/signals.ts";
import type { Stage } from "./context.ts";
import { destinationOf } from "./context.ts";
import { localReply } from "./local-reply.ts";

export function routeTimeout(deps: { clock: Clock }): Stage {
  return (next) => async (req, ctx) => {
    const destination = destinationOf(ctx);
    const ms = destination.policy.route.timeoutMs;
    if (ms <= 0) return next(req, ctx);
    const expired = new AbortController();
    const timer = deadline(deps.clock, ms, () => {
      expired.abort(new DOMException(`route timeout of ${ms} ms expired`, "TimeoutError"));
    });
    // The route signal follows the client too, so the stages below wait on one signal
    // rather than combining two per request with AbortSignal.any (issue 8). It keeps
    // following it after the head, as AbortSignal.any did: a streaming body still stops
    // when the client leaves. The listener dies with the request's own client signal.
    const client = ctx.clientSignal;
    const onClientGone = (): void => expired.abort(client.reason);
    if (client.aborted) onClientGone();
    else client.addEventListener("abort", onClientGone, { once: true });
    ctx.routeSignal = expired.signal;
    try {
      // Every wait below honours routeSignal, so this settles as soon as it fires.
      return await next(req, ctx);
    } catch (e) {
      if (!expired.signal.aborted || ctx.clientSignal.aborted) throw e;
      return localReply(504, `upstream request timeout (remora: route timeout of ${ms} ms for "${destination.name}" expired after ${ctx.attempts} attempt(s))`);
    } finally {
      timer.cancel();
    }
  };
}
