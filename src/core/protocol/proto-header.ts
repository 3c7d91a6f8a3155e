// The mark a listener puts on a request that arrived as an HTTP/2 stream, so the pipeline
// (teed bodies), the upstream (h2 out) and the sidecar (orig-proto) all read one name.

/** Set to "h2" on Requests made from HTTP/2 streams; never forwarded to an app. */
export const PROTO_HEADER = "remora-proto";

/** Whether `req` is to be sent over HTTP/2: it arrived over h2 (the listener marked it). */
export function wantsH2(req: Request): boolean {
  return req.headers.get(PROTO_HEADER) === "h2";
}
