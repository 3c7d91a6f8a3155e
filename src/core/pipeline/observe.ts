// Outermost stage: reports the final `response` event for every request, whatever
// produced it (upstream, local reply, client gone).

import type { Clock } from "../clock.ts";
import type { EventSink } from "../events.ts";
import type { Stage } from "./context.ts";
import { localReply } from "./local-reply.ts";

/** nginx's and Envoy's access-log status for a client that left before the response. */
const CLIENT_CLOSED = 499;

export function observe(deps: { clock: Clock; onEvent?: EventSink }): Stage {
  return (next) => async (req, ctx) => {
    const report = (status: number): void => {
      deps.onEvent?.({
        type: "response",
        requestId: ctx.requestId,
        destination: ctx.destinationName ?? "",
        ...(ctx.endpoint !== undefined ? { endpoint: ctx.endpoint.address } : {}),
        status,
        attempts: ctx.attempts,
        durationMs: deps.clock.now() - ctx.startMs,
        ...(ctx.peerIdentity !== undefined ? { peerIdentity: ctx.peerIdentity } : {}),
      });
    };
    let res: Response;
    try {
      res = await next(req, ctx);
    } catch (e) {
      // The client left: like fetch, reject with its reason; nobody is there to answer.
      if (ctx.clientSignal.aborted) {
        report(CLIENT_CLOSED);
        throw e;
      }
      res = localReply(500, `remora: internal error while handling the request: ${e instanceof Error ? e.message : String(e)}`);
    }
    report(res.status);
    return res;
  };
}
