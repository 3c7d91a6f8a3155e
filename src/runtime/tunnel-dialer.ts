// What the sidecar's tunnels (CONNECT, Upgrade, opaque TCP) need from a dialer, free of
// node:net and node:tls: the dialer itself (src/runtime/node/mesh-tunnel.ts) loads on the
// first tunnel, so a sidecar that only serves HTTP never holds those modules (issue 8: a
// Bun sidecar's idle memory).

import type { Endpoint } from "../core/endpoint.ts";
import { RemoraError } from "../core/errors.ts";
import type { ResponseHead } from "../core/protocol/http1-head.ts";
import type { OriginationMode } from "../core/upstream.ts";
import { lazy } from "./lazy.ts";
import type { Duplex, PeerVerifier, TlsMaterial } from "./types.ts";

export interface MeshTunnelOptions {
  material: () => TlsMaterial;
  verifyPeer: PeerVerifier;
  /** TCP connect plus TLS handshake plus (CONNECT) the peer's answer; default 10 s. */
  connectTimeoutMs?: number;
}

export interface TunnelOpen {
  /** MUTUAL between sidecars; DISABLE for a destination whose policy says so. */
  mode: OriginationMode;
  /** The head to send: a CONNECT request, or the app's Upgrade request. */
  head: Uint8Array;
  /** "connect": wait for the peer's 2xx before handing over; "raw": hand over once the head is written (the app reads the peer's answer itself). */
  expect: "connect" | "raw";
  signal?: AbortSignal;
}

export interface OpenedTunnel {
  socket: Duplex;
  /** The peer's verified SPIFFE ID (mTLS). */
  peerIdentity?: string;
  handshakeMs?: number;
  /** Bytes that arrived after the peer's CONNECT answer (a server-first app's greeting). */
  rest: Uint8Array;
}

/** The peer answered the CONNECT with a refusal (403 authorization, port not allowed): not a connect failure, not retried. */
export class TunnelRefused extends RemoraError {
  readonly status: number;
  readonly head: ResponseHead;
  readonly body: Uint8Array;
  constructor(status: number, head: ResponseHead, body: Uint8Array, message: string) {
    super("ERR_TUNNEL_REFUSED", message);
    this.status = status;
    this.head = head;
    this.body = body;
  }
}

export interface MeshTunnelDialer {
  open(endpoint: Endpoint, o: TunnelOpen): Promise<OpenedTunnel>;
  /** New connections use fresh TLS material (rotation); open tunnels keep theirs. */
  reloadTls(): void;
}

/** A MeshTunnelDialer whose node:tls implementation is imported by the first open(). */
export function lazyMeshTunnelDialer(options: MeshTunnelOptions): MeshTunnelDialer {
  const dialer = lazy(async () => (await import("./node/mesh-tunnel.ts")).createMeshTunnelDialer(options));
  return {
    open: async (endpoint, o) => (await dialer.get()).open(endpoint, o),
    reloadTls() {
      // Nothing to reload before the first tunnel: the dialer reads material when it dials.
      dialer.loaded?.reloadTls();
    },
  };
}
