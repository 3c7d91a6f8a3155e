// Opens one upstream connection and hands it over only once it is fully trusted: TCP
// connected, TLS chain verified by OpenSSL against the bundle, and the peer's SPIFFE ID
// accepted by the injected verifier. Nothing of the request is written before that.

import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import type { Endpoint } from "../../core/endpoint.ts";
import { UpstreamError, type OriginationMode } from "../../core/upstream.ts";
import type { PeerVerifier } from "../types.ts";
import { parseHostPort } from "./address.ts";
import { readPeerChain } from "./peer-chain.ts";
import { connectError, identityError } from "./upstream-errors.ts";

export interface ConnectTarget {
  mode: OriginationMode;
  endpoint: Endpoint;
  /** Built once per TLS material; absent for DISABLE. */
  secureContext?: tls.SecureContext;
  verifyPeer: PeerVerifier;
  connectTimeoutMs: number;
}

/** What a connection proved at its handshake; kept for the requests that reuse it. */
export interface ConnectionFacts {
  peerIdentity?: string;
  peerSerial?: string;
  handshakeMs?: number;
}

export const connectionFacts = new WeakMap<object, ConnectionFacts>();

export type OnConnected = (err: Error | null, socket: Duplex) => void;

export function openConnection(target: ConnectTarget, done: OnConnected): void {
  const address = target.endpoint.address;
  const { host, port } = parseHostPort(address, "endpoint address");
  const started = performance.now();
  let tcpReadyAt: number | undefined;
  let settled = false;

  const socket: net.Socket = target.mode === "DISABLE"
    ? net.connect({ host, port, noDelay: true })
    : tls.connect({
      host,
      port,
      secureContext: target.secureContext,
      // SVIDs name a SPIFFE ID, not a DNS name, so the host-name check is replaced by the
      // verifier's SPIFFE ID check below. The chain is still verified by OpenSSL.
      rejectUnauthorized: true,
      checkServerIdentity: () => undefined,
      ...(net.isIP(host) === 0 ? { servername: host } : {}),
    });

  socket.setNoDelay(true);

  const fail = (err: Error) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.destroy();
    done(err, socket);
  };
  const timer = setTimeout(() => fail(new UpstreamError("connect-failure", address,
    `cannot connect to upstream ${address}: no connection within ${target.connectTimeoutMs} ms`)), target.connectTimeoutMs);
  const onError = (err: Error) => fail(connectError(err, address));
  const onClose = () => fail(connectError(Object.assign(new Error("closed"), { code: "ECONNRESET" }), address));
  socket.on("error", onError);
  socket.once("close", onClose);
  socket.once("connect", () => { tcpReadyAt = performance.now(); });
  socket.once(target.mode === "DISABLE" ? "connect" : "secureConnect", () => void ready());

  async function ready(): Promise<void> {
    const facts: ConnectionFacts = {};
    if (target.mode !== "DISABLE") {
      facts.handshakeMs = performance.now() - (tcpReadyAt ?? started);
      const chain = readPeerChain(socket as tls.TLSSocket);
      facts.peerSerial = chain.serial;
      try {
        facts.peerIdentity = await target.verifyPeer(chain.chainDer, target.endpoint.identity);
      } catch (err) {
        fail(identityError(err, address, chain.uris, target.endpoint.identity));
        return;
      }
    }
    if (settled) return; // failed or timed out while the verifier ran
    settled = true;
    clearTimeout(timer);
    socket.off("error", onError);
    socket.off("close", onClose);
    // The request and the agent add their own listeners; this keeps a late error on an
    // idle pooled socket from becoming an uncaught exception.
    socket.on("error", () => {});
    connectionFacts.set(socket, facts);
    done(null, socket);
  }
}
