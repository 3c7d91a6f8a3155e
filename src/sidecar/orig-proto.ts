// HTTP/1.1 between sidecars on the HTTP/2 connection (Linkerd's orig-proto upgrade): the
// caller's sidecar sends an app's HTTP/1.1 request as a stream on the one multiplexed h2
// mTLS connection it keeps per peer, marked with the protocol it came in; the peer's inbound
// reads the mark and talks HTTP/1.1 to its app again. A burst of app connections is then a
// burst of streams, not of TLS handshakes.

import type { Upstream } from "../core/upstream.ts";
import { forwardRequest } from "../core/forward-request.ts";
import { PROTO_HEADER } from "../core/protocol/proto-header.ts";

export const ORIG_PROTO_HEADER = "remora-orig-proto";

/** Sends HTTP/1.1 requests to mTLS peers as h2 streams, marked; h2 requests and plaintext hops go as they are. */
export function upgradeToH2(send: Upstream): Upstream {
  return (req, endpoint, options) => {
    if (req.headers.get(PROTO_HEADER) === "h2") {
      if (!req.headers.has(ORIG_PROTO_HEADER)) return send(req, endpoint, options);
      // A mark the app wrote itself would make the peer downgrade a real h2 call.
      const headers = new Headers(req.headers);
      headers.delete(ORIG_PROTO_HEADER);
      return send(forwardRequest(req, { headers }), endpoint, options);
    }
    if (options.tls !== "MUTUAL") return send(req, endpoint, options);
    const headers = new Headers(req.headers);
    headers.set(PROTO_HEADER, "h2");
    headers.set(ORIG_PROTO_HEADER, "HTTP/1.1");
    return send(forwardRequest(req, { headers }), endpoint, options);
  };
}

/** Inbound: a request that was HTTP/1.1 at the caller goes to the app as HTTP/1.1, with neither mark. */
export function downgradeForApp(headers: Headers): void {
  if (headers.get(ORIG_PROTO_HEADER) !== "HTTP/1.1") return;
  headers.delete(ORIG_PROTO_HEADER);
  headers.delete(PROTO_HEADER);
}
