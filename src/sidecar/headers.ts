// Header rules at the sidecar boundary: hop-by-hop headers end at each hop (RFC 9110
// §7.6.1), and caller identity is asserted only by the sidecar that verified it.

import { forwardRequest } from "../core/forward-request.ts";

const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"];

/**
 * A copy of `req` with the given header edits; the body streams through untouched.
 *
 * `inPlace`: edit `req`'s own headers and return `req`, for a caller that owns the request
 * and copies it later anyway (the outbound pipeline builds one Request per attempt), where
 * building a Request here is pure cost (bench/RESULTS.md). Headers a runtime keeps
 * immutable make it fall back to the copy; the edits are idempotent, so a half-done
 * in-place edit is simply redone on the copy.
 */
export function rewriteRequest(req: Request, edit: (h: Headers) => void, options: { inPlace?: boolean } = {}): Request {
  if (options.inPlace) {
    try {
      stripHopByHop(req.headers);
      edit(req.headers);
      return req;
    } catch (e) {
      if (!(e instanceof TypeError)) throw e;
    }
  }
  const headers = new Headers(req.headers);
  stripHopByHop(headers);
  edit(headers);
  return forwardRequest(req, { headers });
}

function stripHopByHop(headers: Headers): void {
  for (const name of headers.get("connection")?.split(",") ?? []) headers.delete(name.trim());
  for (const name of HOP_BY_HOP) headers.delete(name);
}

/**
 * Envoy's x-forwarded-client-cert, reduced to the SPIFFE IDs: `By` is this sidecar,
 * `URI` the verified caller. Any incoming value is dropped first: only the sidecar that
 * terminated mTLS may vouch for the caller.
 */
export function setClientCertHeader(h: Headers, own: string, peer: string | undefined): void {
  h.delete("x-forwarded-client-cert");
  if (peer) h.set("x-forwarded-client-cert", `By=${own};URI=${peer}`);
}
