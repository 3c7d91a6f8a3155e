// Bun listeners run on Bun's node:http and node:tls (the node adapter's serve), not on
// Bun.serve, which cannot do two things a sidecar needs (docs/runtimes.md):
// - it builds request.url from the Host header even for an absolute-form target
//   ("POST http://payments/charge", what http_proxy and `curl -x` send), against RFC 9112
//   §3.2.2, so the outbound listener could not see the destination (oven-sh/bun#33002);
// - with tls.requestCert it refuses clients without a certificate but never shows the
//   caller's certificate to the handler, so the inbound cannot authorize by SPIFFE ID.
// Measured on this machine, Bun.serve answers ~3x faster; switch when both are fixed.

export { serve } from "../node/serve.ts";
