// Innermost stage: one attempt to one endpoint through the injected Upstream, with a
// fresh copy of the body and a signal that fires on per-try timeout, route timeout or the
// client leaving. Whatever goes wrong comes out as an UpstreamError with a kind.

import { attemptRequest } from "../body.ts";
import type { Clock } from "../clock.ts";
import type { EventSink } from "../events.ts";
import type { RoutePolicy } from "../policy/types.ts";
import { anySignal, deadline, discardResponse, untilAborted } from "../retry/signals.ts";
import { isCancellingOnSignal, type Upstream, UpstreamError } from "../upstream.ts";
import type { Handler } from "./context.ts";
import { destinationOf, endpointOf, stopSignalOf } from "./context.ts";

/** Envoy ignores a per-try timeout that is not below the route timeout. */
export function effectivePerTryMs(route: RoutePolicy): number | undefined {
  const ms = route.retry.perTryTimeoutMs;
  if (ms === undefined || ms <= 0) return undefined;
  if (route.timeoutMs > 0 && ms >= route.timeoutMs) return undefined;
  return ms;
}

export function send(upstream: Upstream, deps: { clock: Clock; onEvent?: EventSink }): Handler {
  const cancels = isCancellingOnSignal(upstream);
  return async (req, ctx) => {
    const destination = destinationOf(ctx);
    const ep = endpointOf(ctx);
    const route = destination.policy.route;
    const attempt = ctx.attempts;
    const perTryMs = effectivePerTryMs(route);
    let perTryExpired = false;
    // The per-try timeout only covers the wait for the response head (Envoy), so it is
    // cancelled once the head arrives and never cuts a streaming body.
    const tryController = perTryMs === undefined ? undefined : new AbortController();
    const perTry =
      tryController === undefined
        ? undefined
        : deadline(deps.clock, perTryMs!, () => {
            perTryExpired = true;
            tryController.abort(new DOMException(`per_try_timeout of ${perTryMs} ms expired`, "TimeoutError"));
          });
    // Client gone, route timeout, per-try timeout: whichever comes first stops the attempt.
    // Without a per-try timeout this is the route's (or the client's) signal, nothing built per attempt.
    const signal = tryController === undefined ? stopSignalOf(ctx) : anySignal([stopSignalOf(ctx), tryController.signal]);
    try {
      // A bodiless request needs no copy for an upstream that takes its signal from the options.
      const attemptReq = cancels && ctx.body.kind === "none" && req.body === null ? req : attemptRequest(req, ctx.body, signal);
      const pending = upstream(attemptReq, ep.endpoint, {
        signal,
        tls: route.tls.mode,
        onConnection: (info) => {
          if (ctx.attempts !== attempt) return;
          if (info.peerIdentity !== undefined) ctx.peerIdentity = info.peerIdentity;
          deps.onEvent?.({ type: "connection", requestId: ctx.requestId, destination: destination.name, endpoint: ep.address, attempt, info });
        },
      });
      return await (cancels ? pending : untilAborted(pending, signal, discardResponse));
    } catch (e) {
      if (ctx.clientSignal.aborted) throw ctx.clientSignal.reason;
      if (perTryExpired) throw new UpstreamError("timeout", ep.address, `No response head from ${ep.address} within per_try_timeout (${perTryMs} ms).`);
      if (ctx.routeSignal?.aborted) throw new UpstreamError("timeout", ep.address, `No response head from ${ep.address} before the route timeout (${route.timeoutMs} ms) expired.`);
      if (e instanceof UpstreamError) throw e;
      // An adapter that threw something untyped: the exchange broke without a response.
      throw new UpstreamError("reset", ep.address, `Request to ${ep.address} failed: ${e instanceof Error ? e.message : String(e)}.`, { cause: e });
    } finally {
      perTry?.cancel();
    }
  };
}
