// Body stage: buffers a request body that fits route.retry_buffer_bytes so each attempt
// can send it again; a larger one will stream through once (see ../body.ts).

import { prepareBody } from "../body.ts";
import type { Stage } from "./context.ts";
import { destinationOf } from "./context.ts";
import { localReply } from "./local-reply.ts";

export function bufferBody(): Stage {
  return (next) => async (req, ctx) => {
    const limit = destinationOf(ctx).policy.route.retryBufferBytes;
    try {
      ctx.body = await prepareBody(req, limit);
    } catch (e) {
      if (ctx.clientSignal.aborted) throw ctx.clientSignal.reason;
      return localReply(400, `remora: the request body could not be read: ${e instanceof Error ? e.message : String(e)}`);
    }
    return next(req, ctx);
  };
}
