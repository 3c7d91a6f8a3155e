// Endpoint stage: counts requests in flight (least_request reads it) and feeds each
// attempt's outcome to outlier detection as soon as the response head or failure is known.

import { UpstreamError } from "../upstream.ts";
import type { Stage } from "./context.ts";
import { destinationOf, endpointOf } from "./context.ts";

export function endpoint(): Stage {
  return (next) => async (req, ctx) => {
    const destination = destinationOf(ctx);
    const ep = endpointOf(ctx);
    ep.activeRequests++;
    try {
      const res = await next(req, ctx);
      destination.outlier?.record(ep, { kind: "status", status: res.status }, destination.endpoints);
      return res;
    } catch (e) {
      // A client that left says nothing about the endpoint.
      if (e instanceof UpstreamError && !ctx.clientSignal.aborted) destination.outlier?.record(ep, { kind: e.kind }, destination.endpoints);
      throw e;
    } finally {
      ep.activeRequests--;
    }
  };
}
