// The one interface every runtime adapter (node, bun, deno) implements. Adapters are
// thin: they move bytes and run TLS handshakes; every decision (what is retriable,
// whether a peer identity is acceptable) is made by the core through injected functions.

import type { Upstream } from "../core/upstream.ts";

/** PEM material for one side of mTLS. Read on each new connection, so a swap takes effect at once. */
export interface TlsMaterial {
  /** Leaf first, then any intermediates. */
  certPem: string;
  keyPem: string;
  /** Trust bundle: one or more root certificates (several during a root rotation). */
  bundlePem: string;
}

/**
 * Verifies a peer after the TLS library has checked its chain against the bundle:
 * receives the peer chain (DER, leaf first) and returns its SPIFFE ID, or throws a
 * RemoraError(ERR_SVID_INVALID | ERR_PEER_IDENTITY) with a sentence naming the peer.
 */
export type PeerVerifier = (chainDer: Uint8Array[], expectedIdentity?: string) => Promise<string>;

/** Inbound acceptance (Istio PeerAuthentication names). */
export type InboundMode = "STRICT" | "PERMISSIVE" | "DISABLE";

export interface ConnInfo {
  remoteAddress: string;
  remotePort: number;
  /** "address:port" as logs and refusals name the caller ("[::1]:5000" for IPv6), made once per connection. */
  remote: string;
  /** True when the request came over mTLS with a verified client certificate. */
  mtls: boolean;
  /** The caller's verified SPIFFE ID (mTLS only). */
  peerIdentity?: string;
}

export type Handler = (req: Request, info: ConnInfo) => Promise<Response>;

export interface ServeOptions {
  /** "host:port"; port 0 picks a free one (see Listener.port). */
  listen: string;
  handler: Handler;
  /** Absent: plain HTTP only. */
  tls?: {
    material: () => TlsMaterial;
    verifyPeer: PeerVerifier;
    mode: InboundMode;
    /**
     * "require" (default): a client certificate is mandatory on TLS connections (a sidecar's
     * inbound). "request": asked for, verified when presented, optional otherwise (the
     * control plane, where join-token holders have no certificate yet).
     */
    clientCert?: "require" | "request";
    /**
     * Called for each refused handshake, with a sentence naming the peer address and a
     * short label for metrics (`TlsRefusal`; absent when the adapter cannot tell).
     */
    onRefused?: (reason: string, remote: string, kind?: TlsRefusal) => void;
  };
  /** Request and connection limits; absent fields take DEFAULT_LIMITS (src/runtime/limits.ts). */
  limits?: Partial<ListenerLimits>;
  /** Called for each request or connection refused by a limit, with a sentence naming the peer. */
  onRejected?: (reason: LimitReason, message: string, remote: string) => void;
  /** Traffic other than HTTP/1.1 requests (docs/protocols.md); absent: HTTP/1.1 only, as before. */
  streams?: StreamHandlers;
}

/**
 * What a listener does with connections that are not HTTP/1.1 requests. The adapter
 * detects the protocol from the first bytes (src/core/protocol/detect.ts) or, under mTLS,
 * from ALPN; the sidecar decides where each goes.
 */
export interface StreamHandlers {
  /** How long to wait for a client's first bytes before taking it for a server-speaks-first protocol (opaque). */
  detectTimeoutMs?: number;
  /**
   * HTTP/2 (prior-knowledge h2c on a plaintext port, ALPN "h2" under mTLS): each stream
   * becomes a Request for `handler` carrying the header `remora-proto: h2`; response
   * trailers travel beside the Response (src/core/trailers.ts). Absent: h2 is refused.
   */
  h2?: boolean;
  /** HTTP/1.1 `Upgrade` (WebSocket) and `CONNECT` requests: the handler owns the raw socket from then on. */
  tunnel?: (t: TunnelRequest) => void;
  /**
   * Neither HTTP/1 nor HTTP/2 (a TLS ClientHello on a plaintext port counts as opaque),
   * or a connection to a port that skips detection: the handler owns the socket; `head`
   * holds the bytes read while detecting.
   */
  opaque?: (socket: Duplex, head: Uint8Array, info: ConnInfo) => void;
}

/** A byte stream the handler reads, writes and ends (a node:net/node:tls socket on every runtime). */
export interface Duplex {
  write(chunk: Uint8Array): boolean;
  end(): void;
  destroy(error?: Error): void;
  on(event: "data", listener: (chunk: Uint8Array) => void): this;
  on(event: "end" | "close" | "drain", listener: () => void): this;
  on(event: "error", listener: (err: Error) => void): this;
  pause(): this;
  resume(): this;
}

export interface TunnelRequest {
  kind: "upgrade" | "connect";
  /** The request head (no body): method, absolute URL (CONNECT: `http://host:port/`), headers. */
  request: Request;
  socket: Duplex;
  /** Bytes already read past the request head. */
  head: Uint8Array;
  info: ConnInfo;
}

/** Why a TLS handshake or verified connection was refused (the `reason` label of remora_inbound_denied_total). */
export type TlsRefusal = "expired" | "not-yet-valid" | "untrusted" | "key-usage" | "no-certificate" | "protocol" | "plaintext" | "identity" | "handshake";

/**
 * Envoy-like limits every listener enforces (docs/hardening.md): the offender gets an
 * answer with a reason (or, over the connection limit, a closed connection), others are
 * unaffected.
 */
export interface ListenerLimits {
  /** Bytes of the request line plus headers (431 beyond). Envoy's max_request_headers_kb: 60. */
  maxRequestHeaderBytes: number;
  /** Header fields per request (431 beyond). Envoy's max_headers_count: 100. */
  maxRequestHeaders: number;
  /** Request body bytes (413 beyond: at once from Content-Length, or when a chunked body passes it). */
  maxRequestBodyBytes: number;
  /** Open connections per listener; new ones beyond are answered 503 (plaintext) or closed (TLS). */
  maxConnections: number;
  /** A request's headers must be complete this long after its connection starts one (408 beyond; slowloris). */
  requestHeadersTimeoutMs: number;
  /** A request body that sends nothing for this long is cut (408). */
  requestBodyIdleTimeoutMs: number;
}

/** The `reason` label of remora_listener_rejected_total. */
export type LimitReason = "header_size" | "header_count" | "body_size" | "connections" | "headers_timeout" | "body_timeout" | "bad_request";

export interface Listener {
  readonly address: string;
  readonly port: number;
  /** Rebuild the TLS context from `material()` now (certificate rotation); live connections keep theirs. */
  reloadTls(): void;
  /** Stop accepting; resolve when in-flight requests are done or `graceMs` passed. */
  close(graceMs?: number): Promise<void>;
}

export interface UpstreamFactoryOptions {
  material: () => TlsMaterial;
  verifyPeer: PeerVerifier;
  /** Idle keep-alive connections are closed after this many ms. */
  idleTimeoutMs?: number;
}

export interface MeshUpstream {
  send: Upstream;
  /** Drop pooled connections so new ones use fresh TLS material (rotation). */
  reloadTls(): void;
  close(): void;
}

export interface Runtime {
  readonly name: "node" | "bun" | "deno";
  readonly version: string;
  serve(options: ServeOptions): Promise<Listener>;
  createUpstream(options: UpstreamFactoryOptions): MeshUpstream;
}
