// Retry stage: runs attempts until one answers with a response retry_on does not retry,
// retries run out, or the route timeout / client stops it. Each attempt picks an endpoint
// again (the balance stage below), with fully jittered exponential back-off in between.

import type { Clock, Random } from "../clock.ts";
import type { EventSink } from "../events.ts";
import { backoffMs } from "../retry/backoff.ts";
import { isRetriable } from "../retry/classify.ts";
import { grpcStatusOf } from "../retry/grpc.ts";
import { type AttemptOutcome, describeOutcome } from "../retry/outcome.ts";
import { discardResponse } from "../retry/signals.ts";
import { UpstreamError } from "../upstream.ts";
import type { Stage } from "./context.ts";
import { destinationOf, stopSignalOf } from "./context.ts";
import { upstreamFailureReply } from "./local-reply.ts";
import { withdrawRetry } from "./retry-budget.ts";

export function retry(deps: { clock: Clock; random: Random; onEvent?: EventSink }): Stage {
  return (next) => async (req, ctx) => {
    const destination = destinationOf(ctx);
    const policy = destination.policy.route.retry;
    const emit = deps.onEvent ?? ignore;
    const base = { requestId: ctx.requestId, destination: destination.name };
    let maxAttempts = 1 + Math.max(0, policy.numRetries);
    if (ctx.body.kind === "streamed" && maxAttempts > 1) {
      // Envoy's retry_or_shadow_abandoned: the body streams through once, unprotected.
      emit({ type: "retry-abandoned", ...base, reason: ctx.body.reason });
      maxAttempts = 1;
    }
    // What stops retrying: the client leaving or the route timeout, read as flags; a
    // back-off waits on the route signal, which follows the client (stopSignalOf).
    const { clientSignal, routeSignal } = ctx;

    for (let attempt = 1; ; attempt++) {
      ctx.attempts = attempt;
      ctx.peerIdentity = undefined;
      const startedMs = deps.clock.now();
      let res: Response | undefined;
      let failure: UpstreamError | undefined;
      try {
        res = await next(req, ctx);
      } catch (e) {
        if (!(e instanceof UpstreamError)) throw e;
        failure = e;
      }
      let outcome: AttemptOutcome;
      if (res !== undefined) {
        const grpcStatus = grpcStatusOf(res.headers);
        outcome = grpcStatus === undefined ? { kind: "status", status: res.status } : { kind: "status", status: res.status, grpcStatus };
      } else {
        outcome = { kind: failure?.kind ?? "reset" };
      }
      const retriable = isRetriable(outcome, policy);
      if (res !== undefined && !retriable) return res;

      emit({
        type: "attempt-failed",
        ...base,
        endpoint: ctx.endpoint?.address ?? "",
        attempt,
        kind: outcome.kind,
        ...(res !== undefined ? { status: res.status } : {}),
        message: failure?.message ?? answered(res),
        durationMs: deps.clock.now() - startedMs,
      });
      // Route timeout and client abort are final; the stages above turn them into answers.
      const stop = clientSignal.aborted ? clientSignal : routeSignal?.aborted ? routeSignal : undefined;
      if (stop) {
        if (res !== undefined) discardResponse(res);
        throw stop.reason;
      }
      // A teed body (HTTP/2, gRPC) that outgrew the buffer while streaming can no longer be replayed.
      const abandoned = retriable && attempt < maxAttempts && ctx.body.kind === "teed" && !ctx.body.replay.replayable;
      if (abandoned && ctx.body.kind === "teed") emit({ type: "retry-abandoned", ...base, reason: ctx.body.replay.reason });
      // The budget is asked last, so only a retry that would otherwise be sent spends it.
      if (!retriable || abandoned || attempt >= maxAttempts || !withdrawRetry(ctx, attempt + 1)) {
        if (res !== undefined) return res;
        return upstreamFailureReply(outcome.kind === "status" ? "reset" : outcome.kind, ctx.endpoint?.address ?? "", failure?.message ?? "");
      }
      if (res !== undefined) discardResponse(res);
      const wait = backoffMs(attempt, policy.backoff, deps.random);
      emit({ type: "retry", ...base, attempt: attempt + 1, reason: describeOutcome(outcome), backoffMs: wait });
      await deps.clock.sleep(wait, stopSignalOf(ctx));
    }
  };
}

function ignore(): void {}

/** "endpoint answered 503", plus the reason when the peer sidecar reported its app's failure. */
function answered(res: Response | undefined): string {
  const why = res?.headers.get("x-remora-upstream-failure");
  const grpc = res?.headers.get("grpc-status");
  return `endpoint answered ${res?.status}${grpc !== null && grpc !== undefined ? ` grpc-status ${grpc}` : ""}${why ? `: its app failed (${why})` : ""}`;
}
