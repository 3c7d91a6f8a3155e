// What the stages of one request share, and the shape of a stage: each wraps the next
// (linkerd2-proxy's layers, undici's interceptors), and the innermost one sends.

import type { PreparedBody } from "../body.ts";
import type { Destination, EndpointState } from "./destination.ts";

export interface RequestContext {
  readonly requestId: string;
  readonly startMs: number;
  /** The client's signal: when it aborts, everything for this request stops. */
  readonly clientSignal: AbortSignal;
  /** Logical name from the request (route stage). */
  destinationName?: string;
  /** The destination snapshot this request uses from start to end (route stage). */
  destination?: Destination;
  /** The request body, buffered for replay when it fits (body stage). */
  body: PreparedBody;
  /**
   * Aborts when the route timeout expires or the client leaves, whichever comes first
   * (route-timeout stage); clientSignal tells the two apart. Absent with no route timeout.
   */
  routeSignal?: AbortSignal;
  /** Upstream attempts made so far; the current one while it runs (retry stage). */
  attempts: number;
  /** Addresses tried by earlier attempts, for the previous-hosts preference (balance stage). */
  readonly tried: Set<string>;
  /** Endpoint of the current (finally: last) attempt (balance stage). */
  endpoint?: EndpointState;
  /** Verified SPIFFE ID of the current attempt's peer, when the upstream reported it. */
  peerIdentity?: string;
}

export type Handler = (req: Request, ctx: RequestContext) => Promise<Response>;
export type Stage = (next: Handler) => Handler;

/** Assembles stages outermost first; the last wraps `innermost`. */
export function compose(stages: readonly Stage[], innermost: Handler): Handler {
  return stages.reduceRight<Handler>((next, stage) => stage(next), innermost);
}

/** What every wait of an attempt honours: the route timeout (which follows the client) or, without one, the client. */
export function stopSignalOf(ctx: RequestContext): AbortSignal {
  return ctx.routeSignal ?? ctx.clientSignal;
}

/** The destination the route stage chose; a stage placed before it is a wiring bug. */
export function destinationOf(ctx: RequestContext): Destination {
  if (ctx.destination === undefined) throw new Error("pipeline wiring: a stage that needs a destination runs before the route stage");
  return ctx.destination;
}

export function endpointOf(ctx: RequestContext): EndpointState {
  if (ctx.endpoint === undefined) throw new Error("pipeline wiring: a stage that needs an endpoint runs before the balance stage");
  return ctx.endpoint;
}
