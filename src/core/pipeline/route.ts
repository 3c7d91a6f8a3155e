// Route stage: logical name -> destination (policy + endpoints). Unknown names get a 404
// that names the host, so a typo is obvious; a destination with no endpoints gets 503.

import type { EventSink } from "../events.ts";
import { destinationName, requestHost } from "../router.ts";
import type { Stage } from "./context.ts";
import type { Destination } from "./destination.ts";
import { availabilityOf } from "./availability.ts";
import { localReply } from "./local-reply.ts";

export function route(lookup: (name: string) => Destination | undefined, deps: { onEvent?: EventSink }): Stage {
  return (next) => (req, ctx) => {
    const name = destinationName(req);
    const destination = name === undefined ? undefined : lookup(name);
    if (name === undefined || destination === undefined) {
      if (name !== undefined) ctx.destinationName = name;
      return Promise.resolve(localReply(404, `remora: no route for host "${requestHost(req) ?? ""}"`));
    }
    ctx.destinationName = name;
    ctx.destination = destination;
    destination.outlier?.sweep(destination.endpoints);
    deps.onEvent?.({
      type: "resolve",
      requestId: ctx.requestId,
      destination: name,
      endpoints: availabilityOf(destination),
    });
    if (destination.endpoints.length === 0) {
      return Promise.resolve(localReply(503, `remora: no endpoints for destination "${name}"`));
    }
    return next(req, ctx);
  };
}
