// HTTP trailers (gRPC's grpc-status lives there) ride beside a web Response, which has no
// place for them: the adapter that reads a response registers a promise of its trailers,
// every stage that rebuilds a Response carries them over, and the listener that writes it
// sends them after the body.

const trailers = new WeakMap<Response, Promise<Headers>>();

/** Registers the trailers that arrive after `res`'s body (resolves to empty Headers when there are none). */
export function attachTrailers(res: Response, value: Promise<Headers>): Response {
  trailers.set(res, value);
  return res;
}

/** The trailers registered for `res`, if any. */
export function trailersOf(res: Response): Promise<Headers> | undefined {
  return trailers.get(res);
}

/** A stage that builds a new Response from `from` calls this so trailers are not lost. */
export function carryTrailers(from: Response, to: Response): Response {
  const t = trailers.get(from);
  if (t) trailers.set(to, t);
  return to;
}
