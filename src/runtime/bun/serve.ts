// Bun listeners: plaintext and mTLS STRICT ones run on Bun.listen with remora's own
// HTTP/1.1 server (native-serve.ts), PERMISSIVE ones (plaintext and TLS on one port, told
// apart by the first byte) on Bun's node:tls + node:http (the node adapter's serve).
// Bun.serve is used for none (docs/runtimes.md):
// - it builds request.url from the Host header even for an absolute-form target
//   ("POST http://payments/charge", what http_proxy and `curl -x` send), against RFC 9112
//   §3.2.2, so the outbound listener could not see the destination (oven-sh/bun#33002);
// - it cannot detect the protocol from the first bytes (h2c, tunnels, opaque TCP);
// - with tls.requestCert it refuses clients without a certificate but never shows the
//   caller's certificate to the handler, so the inbound cannot authorize by SPIFFE ID.

import type { Listener, ServeOptions } from "../types.ts";
import { nativeServe } from "./native-serve.ts";

export async function serve(options: ServeOptions): Promise<Listener> {
  const native = !options.tls || options.tls.mode === "DISABLE" || options.tls.mode === "STRICT";
  if (native) return nativeServe(options);
  // Loaded only for a PERMISSIVE listener: node:http and node:tls cost a sidecar that never has one its memory (issue 8).
  return (await import("../node/serve.ts")).serve(options);
}
