// gRPC deadline stage: a request's grpc-timeout bounds the whole call, all attempts and
// back-off and the streamed answer, together with route.timeout (whichever ends first).
// Expiry answers as Envoy does for gRPC: HTTP 200, grpc-status 4 (DEADLINE_EXCEEDED),
// trailers-only before the head, in the trailers once the body is streaming.

import type { Clock } from "../clock.ts";
import { parseGrpcTimeout } from "../grpc-timeout.ts";
import { GRPC_DEADLINE_EXCEEDED, encodeGrpcMessage, grpcLocalReply, isGrpc } from "../retry/grpc.ts";
import { anySignal, deadline, discardResponse } from "../retry/signals.ts";
import { attachTrailers, trailersOf } from "../trailers.ts";
import type { Handler, RequestContext, Stage } from "./context.ts";
import { destinationOf, stopSignalOf } from "./context.ts";

export function grpcDeadline(deps: { clock: Clock }): Stage {
  // Not async for a request without grpc-timeout (nearly all of them; issue 8: allocation).
  return (next) => (req, ctx) => {
    const ms = parseGrpcTimeout(req.headers.get("grpc-timeout"));
    if (ms === undefined) return next(req, ctx);
    return bounded(next, req, ctx, ms, deps);
  };
}

async function bounded(next: Handler, req: Request, ctx: RequestContext, ms: number, deps: { clock: Clock }): Promise<Response> {
  const name = destinationOf(ctx).name;
  const expired = new AbortController();
  const timer = deadline(deps.clock, ms, () => {
    expired.abort(new DOMException(`grpc-timeout of ${ms} ms expired`, "TimeoutError"));
  });
  // Every wait below (attempts, back-off, pending connections) already honours routeSignal.
  ctx.routeSignal = anySignal([stopSignalOf(ctx), expired.signal]);
  const message = () => `remora: grpc-timeout of ${ms} ms for "${name}" expired after ${ctx.attempts} attempt(s)`;

  let res: Response;
  try {
    res = await next(req, ctx);
  } catch (e) {
    timer.cancel();
    if (!expired.signal.aborted || ctx.clientSignal.aborted) throw e;
    return grpcLocalReply(GRPC_DEADLINE_EXCEEDED, message());
  }
  if (expired.signal.aborted) {
    timer.cancel();
    discardResponse(res);
    return grpcLocalReply(GRPC_DEADLINE_EXCEEDED, message());
  }
  if (res.body === null || !isGrpc(res.headers)) {
    timer.cancel();
    return res;
  }
  return boundBody(res, expired.signal, () => timer.cancel(), message);
}

/**
 * The answer's body, cut when `expired` fires: the stream then ends cleanly and its
 * trailers carry grpc-status 4, so the client sees DEADLINE_EXCEEDED rather than a reset.
 */
function boundBody(res: Response, expired: AbortSignal, done: () => void, message: () => string): Response {
  const reader = res.body!.getReader();
  const upstream = trailersOf(res);
  let settle!: (h: Headers) => void;
  const trailers = new Promise<Headers>((resolve) => (settle = resolve));
  const onExpire = () => { reader.cancel(expired.reason).catch(() => {}); };
  expired.addEventListener("abort", onExpire, { once: true });
  const finish = (t: Headers | Promise<Headers>) => {
    done();
    expired.removeEventListener("abort", onExpire);
    Promise.resolve(t).then(settle, () => settle(new Headers()));
  };
  const deadlineTrailers = () => new Headers({ "grpc-status": String(GRPC_DEADLINE_EXCEEDED), "grpc-message": encodeGrpcMessage(message()) });

  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done: ended, value } = await reader.read();
        if (expired.aborted) {
          finish(deadlineTrailers());
          return controller.close();
        }
        if (ended) {
          finish(upstream ?? new Headers());
          return controller.close();
        }
        controller.enqueue(value);
      } catch (e) {
        if (expired.aborted) {
          finish(deadlineTrailers());
          return controller.close();
        }
        finish(new Headers());
        controller.error(e);
      }
    },
    cancel(reason) {
      finish(new Headers());
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return attachTrailers(new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers }), trailers);
}
