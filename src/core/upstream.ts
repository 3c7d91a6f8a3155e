// The innermost stage of the request path: send one attempt to one endpoint. Runtime
// adapters implement it; tests pass fakes. Failures are UpstreamErrors whose `kind`
// is what retry_on and outlier detection reason about.

import type { Endpoint } from "./endpoint.ts";
import { RemoraError } from "./errors.ts";

/**
 * connect-failure: TCP connect or TLS handshake did not complete (incl. reset during handshake).
 * reset: the connection was established, then closed/reset before a full response head.
 * timeout: the attempt's signal fired (per-try timeout) before response headers.
 * tls: the peer's certificate failed verification (wrong CA, wrong SPIFFE ID, expired).
 * refused-stream: HTTP/2 REFUSED_STREAM (request certainly not processed).
 * overflow: a local limit refused the attempt (circuit breaker); never retried.
 */
export type UpstreamErrorKind = "connect-failure" | "reset" | "timeout" | "tls" | "refused-stream" | "overflow";

export class UpstreamError extends RemoraError {
  readonly kind: UpstreamErrorKind;
  readonly endpoint: string;
  constructor(kind: UpstreamErrorKind, endpoint: string, message: string, options?: { cause?: unknown }) {
    super("ERR_UPSTREAM", message, options);
    this.kind = kind;
    this.endpoint = endpoint;
    this.name = "UpstreamError";
  }
}

/** How the caller originates TLS to the endpoint (Istio DestinationRule names; ISTIO_MUTUAL is normalised to MUTUAL). */
export type OriginationMode = "MUTUAL" | "SIMPLE" | "DISABLE";

/** Facts about the connection an attempt used, reported by the adapter as soon as it knows them. */
export interface ConnectionInfo {
  /** The SPIFFE ID the peer presented and that was verified; absent for plaintext. */
  peerIdentity?: string;
  /** True when a pooled connection was reused (no handshake). */
  reused: boolean;
  /** TLS handshake duration in ms when a new connection was made. */
  handshakeMs?: number;
  /** Serial number (hex) of the peer's leaf certificate. */
  peerSerial?: string;
}

export interface UpstreamOptions {
  signal: AbortSignal;
  tls: OriginationMode;
  onConnection?: (info: ConnectionInfo) => void;
}

export type Upstream = (req: Request, endpoint: Endpoint, options: UpstreamOptions) => Promise<Response>;

const cancelling = new WeakSet<Upstream>();

/**
 * Declares that `send` stops on `options.signal` by itself, rejecting as soon as it fires,
 * and reads nothing of the Request but its method, URL, headers and body (not its signal,
 * not its redirect mode). The send stage then hands it a bodiless request as it is, and
 * races no abort against it: a Request copy, a listener and a promise fewer per attempt
 * (issue 8). An Upstream that does not say so keeps those safety nets.
 */
export function cancelsOnSignal(send: Upstream): Upstream {
  cancelling.add(send);
  return send;
}

export function isCancellingOnSignal(send: Upstream): boolean {
  return cancelling.has(send);
}
