// Body stage: buffers a request body that fits route.retry_buffer_bytes so each attempt
// can send it again; a larger one will stream through once (see ../body.ts).

import { prepareBody, type PreparedBody } from "../body.ts";
import { PROTO_HEADER } from "../protocol/proto-header.ts";
import { ReplayableBody } from "../replay-body.ts";
import { isGrpc } from "../retry/grpc.ts";
import type { Handler, RequestContext, Stage } from "./context.ts";
import { destinationOf } from "./context.ts";
import { localReply } from "./local-reply.ts";

const NO_BODY: PreparedBody = { kind: "none" };

export function bufferBody(): Stage {
  return (next) => (req, ctx) => {
    // Not async for a request without a body (most GETs; issue 8: allocation per request).
    if (req.body === null) {
      ctx.body = NO_BODY;
      return next(req, ctx);
    }
    return buffered(next, req, ctx);
  };
}

/** For a request with a body: teed (h2, gRPC) or read up to the limit. */
async function buffered(next: Handler, req: Request, ctx: RequestContext): Promise<Response> {
  const limit = destinationOf(ctx).policy.route.retryBufferBytes;
  // An h2 stream (gRPC streaming above all) must flow before it ends: it is teed, not
  // read up front; it stays replayable while it fits the same limit.
  if (req.headers.get(PROTO_HEADER) === "h2" || isGrpc(req.headers)) {
    ctx.body = { kind: "teed", replay: new ReplayableBody(req.body!, limit) };
    return next(req, ctx);
  }
  try {
    ctx.body = await prepareBody(req, limit);
  } catch (e) {
    if (ctx.clientSignal.aborted) throw ctx.clientSignal.reason;
    return localReply(400, `remora: the request body could not be read: ${e instanceof Error ? e.message : String(e)}`);
  }
  return next(req, ctx);
}
