// Deno's upstream is the node adapter's (node:tls + node:http). Deno.connectTls can skip the
// host-name check (unsafelyDisableHostnameVerification) but never shows the peer
// certificate, so the SPIFFE ID could not be checked; fetch/createHttpClient check host
// names and decompress bodies, which a proxy must not do (docs/runtimes.md).

export { createUpstream } from "../node/upstream.ts";
