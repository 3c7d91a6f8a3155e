// The caller as a handler sees it (ConnInfo), from any runtime's socket: one builder for
// every listener, so plaintext, mTLS and h2 connections describe their caller alike.

import type { ConnInfo } from "./types.ts";
import { formatHostPort } from "./node/address.ts";

/** `peerIdentity`: the caller's verified SPIFFE ID when it came over mTLS; absent for plaintext. */
export function connInfo(socket: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined }, peerIdentity?: string): ConnInfo {
  const remoteAddress = socket.remoteAddress ?? "";
  const remotePort = socket.remotePort ?? 0;
  const info: ConnInfo = { remoteAddress, remotePort, remote: formatHostPort(remoteAddress, remotePort), mtls: peerIdentity !== undefined };
  // Assigned, not spread from `cond ? {...} : {}`: on Node this runs per request.
  if (peerIdentity !== undefined) info.peerIdentity = peerIdentity;
  return info;
}
