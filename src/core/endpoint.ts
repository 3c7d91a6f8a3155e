// An endpoint is one replica of a destination as the caller sees it: where to connect
// and which SPIFFE ID the peer sidecar must present there.

export interface Endpoint {
  /** "host:port" of the peer sidecar's inbound listener (or the app when TLS is DISABLE). */
  address: string;
  /** SPIFFE ID the peer must present, e.g. spiffe://cluster.local/ns/default/sa/payments. */
  identity?: string;
  labels?: Readonly<Record<string, string>>;
}
