// Outermost stage: reports the final `response` event for every request, whatever
// produced it (upstream, local reply, client gone).

import type { Clock } from "../clock.ts";
import type { EventSink, ResponseEvent } from "../events.ts";
import type { RequestContext, Stage } from "./context.ts";
import { localReply } from "./local-reply.ts";

/** nginx's and Envoy's access-log status for a client that left before the response. */
const CLIENT_CLOSED = 499;

type Deps = { clock: Clock; onEvent?: EventSink };

/** A function, not a closure made per request (issue 8: allocation per request). */
function report(deps: Deps, ctx: RequestContext, status: number): void {
  if (deps.onEvent === undefined) return;
  const e: ResponseEvent = { type: "response", requestId: ctx.requestId, destination: ctx.destinationName ?? "", status, attempts: ctx.attempts, durationMs: deps.clock.now() - ctx.startMs };
  // Assigned, not spread: a spread of `cond ? {...} : {}` builds a throwaway object per request.
  if (ctx.endpoint !== undefined) e.endpoint = ctx.endpoint.address;
  if (ctx.peerIdentity !== undefined) e.peerIdentity = ctx.peerIdentity;
  deps.onEvent(e);
}

export function observe(deps: Deps): Stage {
  return (next) => async (req, ctx) => {
    let res: Response;
    try {
      res = await next(req, ctx);
    } catch (e) {
      // The client left: like fetch, reject with its reason; nobody is there to answer.
      if (ctx.clientSignal.aborted) {
        report(deps, ctx, CLIENT_CLOSED);
        throw e;
      }
      res = localReply(500, `remora: internal error while handling the request: ${e instanceof Error ? e.message : String(e)}`);
    }
    report(deps, ctx, res.status);
    return res;
  };
}
